#!/usr/bin/env python3
"""Reads a CDCSYNC_LATENCY_TRACE file (src/CdcSync/Pipeline/LatencyTrace.cs) and says where each
transaction's commit-to-target time went: hub commit -> decoded by the reader (walsender, socket,
Npgsql), -> handed to the writer (router), -> taken by the writer (channel), -> its target commit
started (batching), -> writes done, -> commit done. Then the slowest 1%: which stage, and what
happened meanwhile (GC pauses, probe-thread stalls, thread-pool delays, reader waits).

    bench/latency-trace.py TRACE.csv [--from-us T] [--clusters N]
"""
import bisect, csv, sys
from collections import defaultdict

path = sys.argv[1]
clusters = int(sys.argv[sys.argv.index("--clusters") + 1]) if "--clusters" in sys.argv else 8
ev = defaultdict(list)
for r in csv.DictReader(open(path)):
    ev[r["kind"]].append((int(r["lsn"]), int(r["at_us"]), int(r["other_us"]), int(r["count"]), int(r["mid_us"])))
for k in ev:
    ev[k].sort(key=lambda e: e[1])
recv = ev["r"]
skip = int(len(recv) * 0.15)  # the warm-up and start
recv = recv[skip:]
def first_at_or_after(events, lsn):
    # events in time order with increasing lsn (0 = no transaction end in it): first with lsn >= lsn
    keys = [e[0] for e in events]
    return keys
def index(events):
    evs = [e for e in events if e[0]]
    return [e[0] for e in evs], evs
hk, hs = index(ev["h"]); tk, ts = index(ev["t"]); ck, cs = index(ev["c"])
rows = []
for lsn, at, commit, _, _ in recv:
    def find(keys, evs):
        i = bisect.bisect_left(keys, lsn)
        return evs[i] if i < len(evs) else None
    h, t, c = find(hk, hs), find(tk, ts), find(ck, cs)
    if not (h and t and c):
        continue
    rows.append(dict(lsn=lsn, commit=commit, recv=at, hand=h[1], take=t[1], start=c[2], written=c[4], end=c[1], batch=c[3]))
def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")
stages = [("walsender->reader", "commit", "recv"), ("router", "recv", "hand"), ("channel", "hand", "take"),
          ("batching", "take", "start"), ("writes", "start", "written"), ("commit", "written", "end"), ("in this process", "recv", "end"), ("total", "commit", "end")]
print(f"{len(rows)} transactions (first {skip} left out as warm-up)")
print(f"{'stage':20} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}  ms")
for name, a, b in stages:
    d = [(r[b] - r[a]) / 1000 for r in rows]
    print(f"{name:20} {pct(d, .5):8.2f} {pct(d, .9):8.2f} {pct(d, .99):8.2f} {max(d):8.2f}")
t0, t1 = rows[0]["commit"], rows[-1]["end"]
def within(kind, a, b):
    return [e for e in ev[kind] if e[1] >= a and e[2] <= b]
def summary(kind, a, b):
    es = [e for e in ev[kind] if e[1] >= t0 and e[1] <= t1]
    return len(es), sum(e[1] - e[2] for e in es) / 1000, max([e[1] - e[2] for e in es] or [0]) / 1000
for kind, label in [("j", "JIT compiling"), ("g", "GC pauses"), ("s", "probe-thread stalls > 4 ms"), ("q", "thread-pool delays > 2 ms")]:
    n, total, mx = summary(kind, t0, t1)
    print(f"{label}: {n}, {total:.1f} ms in all, longest {mx:.1f} ms over {(t1 - t0) / 1e6:.1f} s")
gens = defaultdict(int)
for e in ev["g"]:
    if t0 <= e[1] <= t1: gens[e[3]] += 1
print("GCs by generation:", dict(gens))
ws = [e for e in ev["w"] if t0 <= e[1] <= t1]
print(f"reader out of messages: {len(ws)}; handing over then: {sum(e[4]-e[2] for e in ws)/1000:.0f} ms in all, max {max([(e[4]-e[2])/1000 for e in ws] or [0]):.2f} ms; then waiting for the server: {sum(e[1]-e[4] for e in ws)/1000:.0f} ms in all, p50 {pct([(e[1]-e[4])/1000 for e in ws], .5):.2f} ms, max {max([(e[1]-e[4])/1000 for e in ws] or [0]):.2f} ms")
for kind, label in [("f", "awaiting the last flush"), ("k", "checkpoint row"), ("m", "checkpoint row + COMMIT")]:
    es = [(e[1]-e[2])/1000 for e in ev[kind] if t0 <= e[1] <= t1]
    if es:
        print(f"commit step {label}: p50 {pct(es, .5):.2f} p90 {pct(es, .9):.2f} p99 {pct(es, .99):.2f} max {max(es):.2f} ms")
cm = [e for e in ev["c"] if t0 <= e[1] <= t1]
print(f"target commits: {len(cm)}, changes p50 {pct([e[3] for e in cm], .5)} max {max([e[3] for e in cm] or [0])}; duration p50 {pct([(e[1]-e[2])/1000 for e in cm], .5):.2f} p99 {pct([(e[1]-e[2])/1000 for e in cm], .99):.2f} max {max([(e[1]-e[2])/1000 for e in cm] or [0]):.2f} ms")
# The slow tail: group transactions over the p99 into clusters (gap > 200 ms between them starts a new one).
# --in-process: rank by the time from the reader's receipt (what this process controls), not from the hub commit.
origin = "recv" if "--in-process" in sys.argv else "commit"
p99 = pct([r["end"] - r[origin] for r in rows], .99)
slow = [r for r in rows if r["end"] - r[origin] >= p99]
groups = []
for r in slow:
    if groups and r["commit"] - groups[-1][-1]["commit"] < 200_000:
        groups[-1].append(r)
    else:
        groups.append([r])
print(f"\nslowest 1% (>= {p99/1000:.1f} ms): {len(slow)} transactions in {len(groups)} clusters; the {clusters} worst:")
groups.sort(key=lambda g: -max(r["end"] - r[origin] for r in g))
for g in groups[:clusters]:
    a, b = min(r["commit"] for r in g), max(r["end"] for r in g)
    worst = max(g, key=lambda r: r["end"] - r[origin])
    parts = ", ".join(f"{n} {(worst[y] - worst[x]) / 1000:.1f}" for n, x, y in stages)
    def near(kind):
        es = [e for e in ev[kind] if e[1] >= a and e[2] <= b]
        return f"{len(es)} ({sum(e[1]-e[2] for e in es)/1000:.1f} ms)"
    print(f"  at +{(a - t0)/1e6:.2f} s for {(b - a)/1000:.0f} ms, {len(g)} txns; worst: {parts}; GC {near('g')}, stalls {near('s')}, pool {near('q')}, reader waits {near('w')}")
if "--timeline" in sys.argv:
    print("\nper second since the first commit: transactions, max total ms, max in this process (received -> target commit) ms, GC ms, probe stalls ms, pool delays ms, JIT ms (methods)")
    allr = []
    for lsn, at, commit, _, _ in ev["r"]:
        i = bisect.bisect_left(ck, lsn)
        if i < len(cs): allr.append((commit, at, cs[i][1]))
    start = allr[0][0]
    per = defaultdict(list)
    for commit, at, end in allr: per[int((commit - start) / 1e6)].append((end - commit, end - at))
    def ms_in(kind, s):
        a, b = start + s * 1e6, start + (s + 1) * 1e6
        return sum(e[1] - e[2] for e in ev[kind] if a <= e[1] < b) / 1000
    for s in sorted(per):
        v = per[s]
        print(f"{s:4d} {len(v):5d} {max(x[0] for x in v)/1000:9.1f} {max(x[1] for x in v)/1000:9.1f} {ms_in('g', s):7.1f} {ms_in('s', s):7.1f} {ms_in('q', s):7.1f} {ms_in('j', s):7.1f} ({sum(e[3] for e in ev['j'] if start + s * 1e6 <= e[1] < start + (s + 1) * 1e6)})")
