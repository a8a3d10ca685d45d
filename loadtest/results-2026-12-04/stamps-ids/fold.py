# Not part of the build: perf script (dwarf) of a shard -> allocation sites (leaf in mimalloc) by first caller outside std. Usage: fold.py SCRIPT [N]
import sys, collections, re
samples=[]; cur=None
for line in open(sys.argv[1]):
    line=line.rstrip('\n')
    if not line.strip():
        if cur: samples.append(cur); cur=None
        continue
    if not line.startswith((' ','\t')):
        cur=[]; continue
    parts=line.strip().split(None,1)
    if len(parts)<2: continue
    sym=re.sub(r'\+0x[0-9a-f]+$','',parts[1].rsplit(' (',1)[0])
    cur.append(sym)
if cur: samples.append(cur)
tot=len(samples)
def isalloc(s): return s.startswith(('mi_','_mi_','__rust_alloc','__rust_dealloc','__rdl_','__rust_realloc','_rjem','malloc','free','realloc','cfree'))
skip=('alloc::','core::','mi_','_mi_','__rust','<alloc::','<core::','hashbrown::','std::','<std::','<hashbrown','smallvec::','<smallvec','bytes::','<bytes','[unknown]','serde_json::','<serde','serde::','<&')
leafa=[s for s in samples if s and isalloc(s[0])]
print(f"samples {tot}, alloc/free leaf {len(leafa)} ({100*len(leafa)/tot:.1f}%)")
c=collections.Counter()
for s in leafa:
    who=next((f for f in s if not f.startswith(skip) and not isalloc(f)), '?')
    c[who]+=1
for k,v in c.most_common(int(sys.argv[2]) if len(sys.argv)>2 else 40): print(f"{100*v/tot:5.2f}% {k[:150]}")
