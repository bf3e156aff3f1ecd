#!/usr/bin/env python3
"""Side-by-side Markdown table of two bench/run.sh suite directories (their suite.json, see
bench/summarize.py): case | before median | after median | change %.

    bench/compare.py BEFORE_DIR AFTER_DIR

Cells show the median and, when a case has several repetitions, their spread (min–max). The change
is (after − before) / before; "better"/"worse" only says which way it moved for that figure
(lower time, latency and memory, higher rate and ratio are better), not whether the move is larger
than the spread. Figures of PostgreSQL's own tools (CREATE SUBSCRIPTION, pg_recvlogical, native
logical replication in the latency cases) do not depend on the revision: their change shows how much
the machine drifted between the two runs. Reads suite.json files of every bench/summarize.py so far
(latency and step runs without a "system" field are CdcSync's)."""
import json
import os
import statistics
import sys

LOWER, HIGHER, PEER = "lower", "higher", "peer"


def load(directory):
    path = os.path.join(directory, "suite.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def series(values):
    values = sorted(v for v in values if v is not None)
    return {"median": statistics.median(values), "min": values[0], "max": values[-1], "n": len(values)} if values else None


def from_stats(s):
    """A {median, min, max, values} object written by the harness or summarize.py."""
    if not isinstance(s, dict) or s.get("median") is None:
        return None
    return {"median": s["median"], "min": s.get("min", s["median"]), "max": s.get("max", s["median"]), "n": len(s.get("values") or [0])}


def rows(suite):
    """(case, unit, direction, figure) in suite order; figure = {median, min, max, n}."""
    out = []
    for key, workload in (("connector-tpcb", "tpcb"), ("connector-insert", "insert-heavy")):
        data = suite.get(key)
        if not data:
            continue
        s = data.get("summary", {})
        changes = data["reps"][0]["Changes"] if data.get("reps") else data.get("Rows")
        name = f"{workload}, {changes:,} changes"
        for field, label, unit, direction in (
            ("connector", "CdcSync connector", "s", LOWER),
            ("native", "CREATE SUBSCRIPTION (peer)", "s", PEER),
            ("ratio", "subscription / connector", "×", HIGHER),
            ("connectorPeakRssMb", "connector peak RSS", "MB", LOWER),
            ("reader", "reader alone", "s", LOWER),
            ("pgRecvlogical", "pg_recvlogical (peer)", "s", PEER),
        ):
            out.append((f"{name}: {label}", unit, direction, from_stats(s.get(field))))
    for key, label in (("latency-40k", "latency 40,000 changes/s (100-row txns)"), ("latency-5k-one-row", "latency 5,000 one-row txns/s")):
        data = suite.get(key)
        if not data:
            continue
        # CdcSync's figures sit at the top level (also in suites from before native was measured).
        for field, name, unit, direction in (("p50", "p50", "ms", LOWER), ("p95", "p95", "ms", LOWER), ("p99", "p99", "ms", LOWER),
                                             ("max", "max", "ms", LOWER), ("rowsPerSecond", "rate landed", "rows/s", HIGHER)):
            figure = from_stats(data.get(field))
            if figure is None and field == "max":  # older suites kept no max summary: from the runs
                figure = series(r.get("max") for r in data.get("runs") or [] if r.get("system", "cdcsync") == "cdcsync")
            out.append((f"{label}: {name}", unit, direction, figure))
        native = data.get("native") or {}
        for field in ("p50", "p99", "max"):
            out.append((f"{label}: native {field} (peer)", "ms", PEER, from_stats(native.get(field))))
    steps = {}
    for s in suite.get("steps") or []:
        steps.setdefault((s["targetRate"], s.get("system", "cdcsync")), []).append(s)
    for (rate, system), runs in sorted(steps.items()):
        if system == "cdcsync":
            for field, name, unit, direction in (("p50", "p50", "ms", LOWER), ("p99", "p99", "ms", LOWER), ("max", "max", "ms", LOWER),
                                                 ("rowsPerSecond", "rate landed", "rows/s", HIGHER)):
                out.append((f"step {rate:,} changes/s: {name}", unit, direction, series(r.get(field) for r in runs)))
        else:
            for field in ("p50", "p99", "max"):
                out.append((f"step {rate:,} changes/s: {system} {field} (peer)", "ms", PEER, series(r.get(field) for r in runs)))
    http = suite.get("http")
    if http:
        for connector, s in http.get("summary", {}).items():
            out.append((f"{connector} outbound, {http.get('latencyMs')} ms per request", "records/s", HIGHER, from_stats(s.get("recordsPerSecond"))))
    memory = {}
    for m in suite.get("memory") or []:
        memory.setdefault((m["shape"], m["rows"]), []).append(m)
    for (shape, n), runs in memory.items():
        label = f"memory, {n:,} rows in {'one transaction' if shape == 'one' else '1,000-row transactions'}"
        out.append((f"{label}: peak RSS", "MB", LOWER, series(r["peakRssMb"] for r in runs)))
        out.append((f"{label}: time to land", "s", LOWER, series(r["seconds"] for r in runs)))
    return out


def number(v):
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def cell(f, unit):
    if f is None:
        return "—"
    text = f"{number(f['median'])} {unit}"
    low, high = number(f["min"]), number(f["max"])
    if f["n"] > 1 and low != high:
        text += f" ({low}–{high})"
    return text


def change(before, after, direction):
    if before is None or after is None:
        return "—"
    if before["median"] == 0:
        return "n/a"
    pct = (after["median"] - before["median"]) / abs(before["median"]) * 100
    text = f"{pct:+.1f}%"
    if direction != PEER and abs(pct) >= 0.05:
        better = (pct < 0) == (direction == LOWER)
        text += " better" if better else " worse"
    return text


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench/compare.py BEFORE_DIR AFTER_DIR")
    before, after = rows(load(sys.argv[1])), rows(load(sys.argv[2]))
    after_by_case = {case: (unit, direction, f) for case, unit, direction, f in after}
    lines = ["| case | before median | after median | change % |", "|---|---|---|---|"]
    seen = set()
    for case, unit, direction, f in before:
        a = after_by_case.get(case, (unit, direction, None))[2]
        if f is None and a is None:
            continue
        seen.add(case)
        lines.append(f"| {case} | {cell(f, unit)} | {cell(a, unit)} | {change(f, a, direction)} |")
    for case, unit, direction, a in after:  # cases only the after revision has
        if case not in seen and a is not None:
            lines.append(f"| {case} | — | {cell(a, unit)} | — |")
    if len(lines) == 2:
        sys.exit(f"bench/compare.py: no figures in {sys.argv[1]}/suite.json or {sys.argv[2]}/suite.json")
    print("\n".join(lines))


main()
