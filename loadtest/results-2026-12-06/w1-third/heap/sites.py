import sys, re, collections
agg = collections.Counter()
for line in open('peak.folded'):
    stack, n = line.rstrip().rsplit(' ', 1)
    n = int(n)
    frames = stack.split(';')
    # innermost coretalk/glommio/redb frame
    pick = None
    for f in reversed(frames):
        if re.search(r'coretalk::|glommio::|redb::', f):
            pick = f; break
    # also the next outer coretalk frame for context
    ctx = None
    if pick:
        i = frames.index(pick)
        for f in reversed(frames[:i]):
            if 'coretalk::' in f:
                ctx = f; break
    key = (pick or frames[-1])[:110] + '  <=  ' + (ctx or '')[:90]
    agg[key] += n
for k, v in agg.most_common(40):
    print(f"{v/5000:8.1f}  {k}")
