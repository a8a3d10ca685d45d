# Not part of the build: perf script (dwarf) of a shard -> inclusive share of each coretalk:: function (or the prefix given). Usage: incl.py SCRIPT [PREFIX]
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
    cur.append((parts[0],sym))
if cur: samples.append(cur)
tot=len(samples)
k=sum(1 for s in samples if s and s[0][0].startswith('ffffffff'))
print(f"samples {tot} kernel-leaf {100*k/tot:.1f}%")
c=collections.Counter()
pat=sys.argv[2] if len(sys.argv)>2 else 'coretalk::'
for s in samples:
    seen=set()
    for ip,f in s:
        if f.startswith(pat) or ('<'+pat) in f[:40]:
            g=re.sub(r'::\{\{closure\}\}','',f)
            if g not in seen: seen.add(g); c[g]+=1
for kk,v in c.most_common(60): print(f"{100*v/tot:5.1f}% {kk[:140]}")
