#!/usr/bin/env python3
"""Medians (min-max) per variant and rate from the run's .out files: CPU us/msg, p50, p99."""
import glob, re, statistics, sys, os
here = os.path.dirname(os.path.abspath(__file__))
rows = {}
def ms(v):
    return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("µs") else float(v[:-1]) * 1000
for f in sorted(glob.glob(os.path.join(here, "*.out"))):
    var = re.sub(r"\d+$", "", os.path.basename(f)[:-4])
    for line in open(f):
        m = re.match(r"(\d+) msg/s\s+\d+\s+\d+\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\d+\s+\d+\s+\d+\s+(\S+)", line)
        if m:
            rate, p50, p99, p999, mx, cpu = m.groups()
            rows.setdefault((var, int(rate)), []).append((float(cpu), ms(p50), ms(p99), ms(mx)))
def fmt(xs, d=1):
    return f"{statistics.median(xs):.{d}f} ({min(xs):.{d}f}–{max(xs):.{d}f})"
print("| journal | msgs/s | runs | CPU µs/msg | p50 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|---|")
for (var, rate), v in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    print(f"| {var} | {rate:,} | {len(v)} | {fmt([x[0] for x in v])} | {fmt([x[1] for x in v], 2)} | {fmt([x[2] for x in v], 2)} | {fmt([x[3] for x in v])} |")
