#!/usr/bin/env python3
"""Medians (min-max) per side and point of an ab.sh output file, and the ratios of medians.
   python3 summarize.py FILE [REF_SIDE]"""
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) (n=\d+) run=\d+\s+([0-9.]+) us/op\s+p50\s+([0-9.]+) ms\s+p99\s+([0-9.]+) ms", line)
    if m:  # ab.sh fanout: "SIDE n=N run=R ..."
        side, point, cpu, p50, p99 = m.groups()
        w = "w4"
    else:
        m = re.match(r"(\S+) (\S+) run=\d+ ?(.*?)\s+([0-9.]+) us/op\s+p50\s+([0-9.]+) ms\s+p99\s+([0-9.]+) ms", line)
        if not m:
            continue
        w, side, point, cpu, p50, p99 = m.groups()
    rows.setdefault((w, point.strip()), {}).setdefault(side, []).append((float(cpu), float(p50), float(p99)))
for (w, point), sides in rows.items():
    med = {s: statistics.median(c for c, _, _ in v) for s, v in sides.items()}
    print(f"{w} {point}".strip())
    for s, v in sides.items():
        cpus = [c for c, _, _ in v]
        p99 = statistics.median(p for _, _, p in v)
        print(f"  {s:9} {med[s]:7.2f} us ({min(cpus):.2f}-{max(cpus):.2f}), n={len(v)}, p99 median {p99:.2f} ms")
    names = list(sides)
    for a in names:
        for b in names:
            if a < b:
                print(f"  {b}/{a} = {med[b] / med[a]:.3f}")
