import json,sys,glob,os,collections
out=sys.argv[1]; rows=collections.defaultdict(list)
for d in sorted(glob.glob(out+"/*-*/")):
    name=os.path.basename(d.rstrip("/")); rnd,mode=name.split("-",1)
    fs=glob.glob(d+"**/result.json",recursive=True)
    if not fs: continue
    p=json.load(open(fs[0]))["points"][-1]; l=p["latency"]
    print(f"{mode:40s} r{rnd} {p['cpu_us_per_op']:6.2f} us/op p50 {l['p50_us']:7.0f} p90 {l['p90_us']:7.0f} p99 {l['p99_us']:7.0f} p99.9 {l['p999_us']:7.0f} drops {p['drops']} err {p['errors']}")
