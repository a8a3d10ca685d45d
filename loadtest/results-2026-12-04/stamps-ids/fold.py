# Not part of the build: folds `perf script -F comm,ip,sym` output of a dwarf profile.
#   fold.py alloc SCRIPT [N]       allocation sites: samples whose leaf is in the allocator, by first caller outside std
#   fold.py incl SCRIPT [PREFIX]   inclusive share of each function starting with PREFIX (default coretalk::)
import sys, collections, re

def samples(path):
    out, cur = [], None
    for line in open(path):
        line = line.rstrip('\n')
        if not line.strip():
            if cur: out.append(cur)
            cur = None
            continue
        if not line.startswith((' ', '\t')):
            cur = []
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and cur is not None:
            cur.append((parts[0], re.sub(r'\+0x[0-9a-f]+$', '', parts[1].rsplit(' (', 1)[0])))
    if cur: out.append(cur)
    return out

ALLOC = ('mi_', '_mi_', '__rust_alloc', '__rust_dealloc', '__rdl_', '__rust_realloc', 'malloc', 'free', 'realloc', 'cfree')
STD = ('alloc::', 'core::', '__rust', '<alloc::', '<core::', 'hashbrown::', 'std::', '<std::', '<hashbrown', 'smallvec::',
       '<smallvec', 'bytes::', '<bytes', '[unknown]', 'serde_json::', '<serde', 'serde::', '<&') + ALLOC

mode, path = sys.argv[1], sys.argv[2]
ss = samples(path)
tot = len(ss)
c = collections.Counter()
if mode == 'alloc':
    leaf = [s for s in ss if s and s[0][1].startswith(ALLOC)]
    print(f"samples {tot}, alloc/free leaf {len(leaf)} ({100 * len(leaf) / tot:.1f}%)")
    for s in leaf:
        c[next((f for _, f in s if not f.startswith(STD)), '?')] += 1
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
else:
    kernel = sum(1 for s in ss if s and s[0][0].startswith('ffffffff'))
    print(f"samples {tot} kernel-leaf {100 * kernel / tot:.1f}%")
    pat = sys.argv[3] if len(sys.argv) > 3 else 'coretalk::'
    for s in ss:
        seen = set()
        for _, f in s:
            if f.startswith(pat) or ('<' + pat) in f[:40]:
                g = re.sub(r'::\{\{closure\}\}', '', f)
                if g not in seen:
                    seen.add(g)
                    c[g] += 1
    n = 60
for k, v in c.most_common(n):
    print(f"{100 * v / tot:5.2f}% {k[:150]}")
