#!/usr/bin/env python3
"""Summarises a bench/run.sh suite directory: prints one Markdown table, each case beside its peer
(case | CdcSync median (spread) | peer median (spread) | target | verdict), and writes DIR/suite.json
with every repetition, the medians and spreads, and the table's rows ("table").

    bench/summarize.py DIR

Median (min–max over the repetitions). Verdicts use the medians, against the targets of issue 17:
  - commit-to-target p99 at 40,000 changes/s at or below native logical replication's in the same
    session, and under 50 ms when native's is;
  - PostgreSQL connector >= 1.5x CREATE SUBSCRIPTION on the tpcb backlog, >= 2x on the insert-heavy one;
  - Salesforce and NetSuite outbound >= 90% of their API limit;
  - peak RSS < 128 MB for the 5M-row transaction and the 5M-row backlog (bench/memory.sh).
The one-row latency case and the steps are reported beside native without a target.
Latency rows written before bench/latency.sh measured native (no "system" field) are CdcSync's."""
import json
import os
import statistics
import sys

out = sys.argv[1]
LATENCY_TARGET_MS = 50
CONNECTOR_TARGETS = {"tpcb": 1.5, "insert": 2.0}
HTTP_TARGET = 0.9
RSS_TARGET_MB = 128


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        if name.endswith(".jsonl"):
            return [json.loads(line) for line in f if line.strip()]
        return json.load(f)


def stats(values):
    values = sorted(v for v in values if v is not None)
    return {"median": statistics.median(values), "min": values[0], "max": values[-1], "values": values} if values else None


def number(v, digits=1):
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def fmt(s, unit="", digits=1):
    """median (min–max), the spread left out when there is one value or none."""
    if s is None:
        return "—"
    text = f"{number(s['median'], digits)}{unit}"
    low, high = number(s["min"], digits), number(s["max"], digits)
    if len(s.get("values") or []) > 1 and low != high:
        text += f" ({low}–{high})"
    return text


def verdict(ok):
    return "met" if ok else "NOT met"


def system(run):
    return run.get("system", "cdcsync")


def latency_stats(runs):
    """Medians and spreads of one system's latency runs (None when it has none)."""
    if not runs:
        return None
    s = {k: stats([r.get(k) for r in runs]) for k in ("p50", "p90", "p95", "p99", "max", "rowsPerSecond", "peakRssMb")}
    s["n"] = len(runs)
    return s


def latency_cell(s):
    if s is None:
        return "—"
    return (f"p50 {fmt(s['p50'])} / p99 {fmt(s['p99'])} / max {fmt(s['max'])} ms "
            f"at {fmt(s['rowsPerSecond'], ' rows/s', 0)}")


def pairs(runs):
    """(cdcsync p99, native p99) of the runs that measured both systems (same runId)."""
    by_run = {}
    for r in runs:
        if r.get("runId"):
            by_run.setdefault(r["runId"], {})[system(r)] = r
    return [(p["cdcsync"]["p99"], p["native"]["p99"]) for p in by_run.values() if "cdcsync" in p and "native" in p]


def peer_comparison(ours, peer, runs):
    """'p99 X vs native Y ms (ratio); k of n repetitions at or below native'"""
    c, n = ours["p99"]["median"], peer["p99"]["median"]
    text = f"p99 {c:.1f} vs native {n:.1f} ms ({c / n:.2f}×)" if n > 0 else f"p99 {c:.1f} vs native {n:.1f} ms"
    p = pairs(runs)
    if p:
        text += f"; {sum(1 for a, b in p if a <= b)} of {len(p)} runs at or below native's"
    return text


suite = {}
table = []


def row(case, ours, peer, target, result):
    table.append({"case": case, "cdcsync": ours, "peer": peer, "target": target, "verdict": result})


for name, workload, label in (("connector-tpcb.json", "tpcb", "pgbench tpcb"), ("connector-insert.json", "insert", "insert-heavy")):
    data = load(name)
    if not data:
        continue
    suite[name[:-5]] = data
    target = CONNECTOR_TARGETS[workload]
    s = data["summary"]
    ratio = s["ratio"]
    row(f"PostgreSQL connector, {label}, {data['reps'][0]['Changes']:,} changes",
        f"{fmt(s['connector'], ' s', 2)}; ratio {fmt(ratio, '×', 2)}; peak RSS {fmt(s['connectorPeakRssMb'], ' MB', 0)}",
        f"CREATE SUBSCRIPTION {fmt(s['native'], ' s', 2)}",
        f"≥ {target}× the subscription's rate",
        f"{verdict(ratio['median'] >= target)}; targets equal hub: {s['allMatch']}")
    reps = data["reps"]
    if all(r.get("PipelineServerCpu") and r.get("NativeServerCpu") for r in reps):
        def cpu(f):
            return stats([f(r) for r in reps])
        ceiling = cpu(lambda r: r["NativeSeconds"] / max(0.01, r["PipelineServerCpu"]["Walsender"]))
        row(f"CPU during those runs, {label} (s)",
            f"walsender {fmt(cpu(lambda r: r['PipelineServerCpu']['Walsender']), '', 2)}; worker {fmt(cpu(lambda r: r['PipelineCpuSeconds']), '', 2)}; "
            f"target backends {fmt(cpu(lambda r: r['PipelineServerCpu']['TargetBackends']), '', 2)}",
            f"walsender {fmt(cpu(lambda r: r['NativeServerCpu']['Walsender']), '', 2)}; apply worker {fmt(cpu(lambda r: r['NativeServerCpu']['ApplyWorker']), '', 2)}",
            "(report)",
            f"no client of a walsender can beat its CPU time: ceiling {fmt(ceiling, '×', 2)} the subscription's rate")
    c = s.get("nativeOverReaderAlone") or s.get("ceiling")
    if c and s.get("reader"):
        row("CdcSync's reader alone into a no-op sink, same backlog",
            f"{fmt(s['reader'], ' s', 2)} (subscription / reader {fmt(c, '×', 2)})",
            f"pg_recvlogical {fmt(s.get('pgRecvlogical'), ' s', 2)}",
            "(report)", "not a ceiling (docs/BENCHMARKS.md)")

for name, label, has_target in (("latency-40k.jsonl", "40,000 changes/s (100-row txns)", True),
                                 ("latency-5k-one-row.jsonl", "5,000 one-row txns/s", False)):
    runs = load(name)
    if not runs:
        continue
    ours = latency_stats([r for r in runs if system(r) == "cdcsync"])
    peer = latency_stats([r for r in runs if system(r) == "native"])
    entry = dict(ours or {})  # CdcSync's figures at the top level, as before native was measured
    entry.update({"runs": runs, "native": peer, "pairs": [{"cdcsync": a, "native": b} for a, b in pairs(runs)]})
    suite[name[:-6]] = entry
    if has_target:
        target = f"p99 ≤ native's, and < {LATENCY_TARGET_MS} ms when native's is"
        if ours is None:
            result = "no CdcSync figures"
        elif peer is None:
            result = "no native figures (not measured in this session)"
        else:
            c, n = ours["p99"]["median"], peer["p99"]["median"]
            ok = c <= n and (n >= LATENCY_TARGET_MS or c < LATENCY_TARGET_MS)
            result = f"{verdict(ok)}: {peer_comparison(ours, peer, runs)}"
    else:
        target = "(report)"
        result = peer_comparison(ours, peer, runs) if ours and peer else "no native figures" if ours else "no CdcSync figures"
    row(f"latency, {label}", latency_cell(ours), "native " + latency_cell(peer) if peer else "—", target, result)

steps = load("steps.jsonl")
if steps:
    suite["steps"] = steps  # every run, each with its "system"
    summary = []
    for rate in sorted({s["targetRate"] for s in steps}):
        at = [s for s in steps if s["targetRate"] == rate]
        ours = latency_stats([s for s in at if system(s) == "cdcsync"])
        peer = latency_stats([s for s in at if system(s) == "native"])
        summary.append({"targetRate": rate, "cdcsync": ours, "native": peer})
        notes = []
        for who, s in (("CdcSync", ours), ("native", peer)):
            if s:
                delivered = s["rowsPerSecond"]["median"] >= 0.95 * rate
                notes.append(f"{who}: offered rate {'delivered' if delivered else 'NOT delivered'}")
        if ours and peer:
            notes.append(peer_comparison(ours, peer, at))
        row(f"step {rate:,} changes/s (100-row txns)", latency_cell(ours), "native " + latency_cell(peer) if peer else "—", "(report)", "; ".join(notes))
    suite["stepsSummary"] = summary

http = load("http.json")
if http:
    suite["http"] = http
    for connector, s in http["summary"].items():
        share = s["shareOfLimit"]
        row(f"{connector} outbound, {http['latencyMs']} ms per request",
            f"{fmt(s['recordsPerSecond'], ' records/s')} = {share['median']:.0%} of the limit"
            + (f"; the API's own time per write request {fmt(s['apiMsPerWriteRequest'], ' ms')}, {s['shareOfApiPace']['median']:.0%} of the pace it allows"
               if s.get("apiMsPerWriteRequest") and s["apiMsPerWriteRequest"]["median"] > 0 else ""),
            f"API limit {number(s['limitPerSecond'])} records/s", f"≥ {HTTP_TARGET:.0%} of the limit", verdict(share["median"] >= HTTP_TARGET))

memory = load("memory.jsonl")
if memory:
    suite["memory"] = memory
    shapes = {}
    for m in memory:
        shapes.setdefault((m["shape"], m["rows"]), []).append(m)
    for (shape, rows), ms in shapes.items():
        rss, seconds = stats([m["peakRssMb"] for m in ms]), stats([m["seconds"] for m in ms])
        row(f"peak RSS, {rows:,} rows in {'one transaction' if shape == 'one' else '1,000-row transactions'}",
            f"{fmt(rss, ' MB', 0)} (landed in {fmt(seconds, ' s')})", "—", f"< {RSS_TARGET_MB} MB", verdict(rss["median"] < RSS_TARGET_MB))

suite["table"] = table
with open(os.path.join(out, "suite.json"), "w") as f:
    json.dump(suite, f, indent=2)
lines = ["| Case | CdcSync median (spread) | Peer median (spread) | Target | Verdict |", "|---|---|---|---|---|"]
lines += [f"| {r['case']} | {r['cdcsync']} | {r['peer']} | {r['target']} | {r['verdict']} |" for r in table]
print("\n".join(lines))
print()
print("Median (min–max over the repetitions). Latency: hub commit → target commit; native = CREATE SUBSCRIPTION on the same cluster, "
      "measured in the same session, alternating which system runs first.")
