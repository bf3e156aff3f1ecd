#!/usr/bin/env python3
"""Summarises a bench/run.sh suite directory: prints medians, spread and targets (Markdown),
and writes DIR/suite.json with every repetition and the summary."""
import json
import os
import statistics
import sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        if name.endswith(".jsonl"):
            return [json.loads(line) for line in f if line.strip()]
        return json.load(f)


def stats(values):
    values = sorted(values)
    return {"median": statistics.median(values), "min": values[0], "max": values[-1], "values": values} if values else None


def verdict(ok):
    return "met" if ok else "NOT met"


suite = {}
lines = ["| Case | Median | Spread (min–max) | Peer / limit | Target | Verdict |", "|---|---|---|---|---|---|"]

for name, workload, target in (("connector-tpcb.json", "pgbench tpcb", 1.5), ("connector-insert.json", "insert-heavy", 3.0)):
    data = load(name)
    if not data:
        continue
    suite[name[:-5]] = data
    s = data["summary"]
    ratio = s["ratio"]
    lines.append(
        f"| PostgreSQL connector, {workload}, {data['reps'][0]['Changes']:,} changes | {s['connector']['median']:.2f} s "
        f"(ratio {ratio['median']:.2f}×) | {s['connector']['min']:.2f}–{s['connector']['max']:.2f} s (ratio {ratio['min']:.2f}–{ratio['max']:.2f}) "
        f"| CREATE SUBSCRIPTION {s['native']['median']:.2f} s ({s['native']['min']:.2f}–{s['native']['max']:.2f}) | ≥ {target}× "
        f"| {verdict(ratio['median'] >= target)}; targets equal hub: {s['allMatch']}; peak RSS {s['connectorPeakRssMb']['median']:.0f} MB |")
    c = s.get("nativeOverReaderAlone") or s.get("ceiling")
    if c:
        lines.append(
            f"| CdcSync's reader alone into a no-op sink, same backlog | {s['reader']['median']:.2f} s "
            f"(subscription / reader {c['median']:.2f}×) | {s['reader']['min']:.2f}–{s['reader']['max']:.2f} s ({c['min']:.2f}–{c['max']:.2f}×) "
            f"| pg_recvlogical {s['pgRecvlogical']['median']:.2f} s | (report) | see docs/BENCHMARKS.md: not a ceiling |")

for name, label, target in (("latency-40k.jsonl", "40,000 changes/s (100-row txns)", 50), ("latency-5k-one-row.jsonl", "5,000 one-row txns/s", 20)):
    runs = load(name)
    if not runs:
        continue
    p99 = stats([r["p99"] for r in runs])
    suite[name[:-6]] = {"runs": runs, "p50": stats([r["p50"] for r in runs]), "p95": stats([r["p95"] for r in runs]), "p99": p99,
                        "rowsPerSecond": stats([r["rowsPerSecond"] for r in runs])}
    sp = suite[name[:-6]]
    lines.append(
        f"| latency, {label} | p50 {sp['p50']['median']:.1f} / p95 {sp['p95']['median']:.1f} / p99 {p99['median']:.1f} ms at {sp['rowsPerSecond']['median']:,.0f} rows/s "
        f"| p99 {p99['min']:.1f}–{p99['max']:.1f} ms | — | p99 < {target} ms | {verdict(p99['median'] < target)} |")

steps = load("steps.jsonl")
if steps:
    suite["steps"] = steps
    for s in steps:
        lines.append(
            f"| step {s['targetRate']:,} changes/s | p50 {s['p50']:.1f} / p95 {s['p95']:.1f} / p99 {s['p99']:.1f} ms at {s['rowsPerSecond']:,.0f} rows/s "
            f"| max {s['max']:.1f} ms | — | (report) | {'offered rate delivered' if s['rowsPerSecond'] >= 0.95 * s['targetRate'] else 'offered rate NOT delivered'} |")

http = load("http.json")
if http:
    suite["http"] = http
    for connector, s in http["summary"].items():
        share = s["shareOfLimit"]
        lines.append(
            f"| {connector} outbound, {http['latencyMs']} ms per request | {s['recordsPerSecond']['median']:.1f} records/s "
            f"| {s['recordsPerSecond']['min']:.1f}–{s['recordsPerSecond']['max']:.1f} | limit {s['limitPerSecond']:.1f}/s ({share['median']:.0%}) | ≥ 90% | {verdict(share['median'] >= 0.9)} |")

memory = load("memory.jsonl")
if memory:
    suite["memory"] = memory
    for m in memory:
        shape = "one transaction" if m["shape"] == "one" else "1,000-row transactions"
        lines.append(f"| peak RSS, {m['rows']:,} rows in {shape} | {m['peakRssMb']} MB | landed in {m['seconds']:.1f} s | — | ≤ 200 MB (aim < 128) | {verdict(m['peakRssMb'] <= 200)} |")

with open(os.path.join(out, "suite.json"), "w") as f:
    json.dump(suite, f, indent=2)
print("\n".join(lines))
