"""Run the benchmarks and print one table of this machine's figures.

``python -m bench [MODULE...] [--repeat N]`` runs every ``bench/bench_*.py``
module's ``run(report)`` (or only the named ones, e.g. ``rlpx table``) N times
(default 2)
and prints one table: each figure (the best of the N runs, with the spread of
the runs when N > 1), the limit it is measured against in the same run, their
ratio (that of the run with the best value), and the change from the previous run of
the runner. Then a "goals"
section says which of the project's speed goals are met on this machine.

The figures go to ``bench-results/latest.json``; the file that was there is
kept as ``bench-results/previous.json`` (the run the changes are relative to).
A bench module calls ``report.add(group, name, value, unit, limit=None,
limit_name=None)`` once per figure; for units where less is better (time,
memory, messages) the best of N is the smallest value.
"""

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time

# Benchmarks stay on loopback: discovery's clock check (started after many reply
# timeouts) asks 127.0.0.1 instead of pool.ntp.org.
os.environ.setdefault("GETHP2P_NTP_POOL", "127.0.0.1")

# Units whose figures are better when smaller; everything else is a rate.
LOWER_IS_BETTER = {"s", "ms", "us", "ns", "bytes", "KiB", "MiB", "msgs", "packets", "threads"}

# (description, group, name, unit, "value" or "ratio", threshold): the speed goals.
GOALS = [
    ("discv4 decode+recover >= 0.85 x raw recover", "discover", "discv4 ping decode+recover",
     "packets/s", "ratio", 0.85),
    ("RLPx handshakes >= 1,500/s", "rlpx", "enc handshakes, both sides, one thread", "hs/s",
     "value", 1500.0),
    ("1 KiB frames >= 60,000 msg/s", "rlpx", "frame write+read 1 KiB, memory", "msg/s",
     "value", 60000.0),
    ("64 KiB frames >= 0.9 x AES-CTR+Keccak limit", "rlpx", "frame write+read 64 KiB, memory",
     "MB/s", "ratio", 0.9),
    ("ECIES encrypt+decrypt >= 5,000/s", "rlpx", "ECIES encrypt+decrypt", "ops/s", "value", 5000.0),
    # "ratio<=": at most the threshold (CPU per answered request over the codec's own cost).
    ("node CPU per handshake <= 1.5 x receiver handshake", "load", "node CPU per answered handshake", "ms",
     "ratio<=", 1.5),
    ("node CPU per pong <= 1.5 x decode+recover+encode+sign", "load", "node CPU per pong", "ms",
     "ratio<=", 1.5),
    ("node busy on more than one core under handshake load", "load", "node cores busy, handshake load",
     "cores", "value", 1.0),
]


def _key(row):
    return "%s|%s|%s" % (row["group"], row["name"], row["unit"])


class Report:
    """Collects the figures of one run of the bench modules."""

    def __init__(self, verbose=False):
        self.rows = []
        self.verbose = verbose

    def add(self, group, name, value, unit, limit=None, limit_name=None):
        row = {"group": group, "name": name, "value": float(value), "unit": unit,
               "limit": float(limit) if limit else None, "limit_name": limit_name}
        if limit:
            row["ratio"] = value / limit
        self.rows.append(row)
        if self.verbose:
            print("  " + _line(row))
            sys.stdout.flush()


def _num(v):
    if v is None:
        return ""
    a = abs(v)
    if a >= 100:
        return "{:,.0f}".format(v)
    if a >= 1:
        return "%.2f" % v
    return "%.3g" % v


def _line(row, spread=None, change=None):
    line = "%-9s %-48s %11s %-9s" % (row["group"], row["name"], _num(row["value"]), row["unit"])
    line += " %6s" % (("%.0f%%" % (spread * 100)) if spread is not None else "")
    if row.get("limit"):
        line += " %11s %-20s %5.2f" % (_num(row["limit"]), (row["limit_name"] or "")[:20], row["ratio"])
    else:
        line += " %11s %-20s %5s" % ("", "", "")
    if change is not None:
        line += " %+7.1f%%" % (change * 100)
    return line


def combine(runs):
    """One row per figure from several runs: the best value and best limit, and the spread.

    The spread is (max - min) / best of the value over the runs. The ratio is the
    one of the run that gave the best value: a figure and its limit are measured side
    by side within a run, so their ratio is only meaningful run by run.
    """
    order, by_key = [], {}
    for rows in runs:
        for row in rows:
            k = _key(row)
            if k not in by_key:
                order.append(k)
                by_key[k] = []
            by_key[k].append(row)
    out = []
    for k in order:
        rows = by_key[k]
        lower = rows[0]["unit"] in LOWER_IS_BETTER
        vals = [r["value"] for r in rows]
        best = min(vals) if lower else max(vals)
        row = dict(rows[0])
        row["value"] = best
        row["runs"] = vals
        row["spread"] = (max(vals) - min(vals)) / best if best and len(vals) > 1 else None
        limits = [r["limit"] for r in rows if r.get("limit")]
        if limits:
            row["limit"] = min(limits) if lower else max(limits)
            row["ratios"] = [r["value"] / r["limit"] for r in rows if r.get("limit")]
            # The run that gave the best value is the least disturbed one: its own ratio.
            best_run = next(r for r in rows if r["value"] == best)
            if best_run.get("limit"):
                row["ratio"] = best / best_run["limit"]
            else:
                row["ratio"] = best / row["limit"]
        out.append(row)
    return out


def goals(rows):
    """[(description, figure, threshold, met or None if the figure is missing)]."""
    out = []
    for desc, group, name, unit, kind, threshold in GOALS:
        row = next((r for r in rows if r["group"] == group and r["name"].startswith(name)
                    and r["unit"] == unit), None)
        if row is None:
            out.append((desc, None, threshold, None))
            continue
        fig = row.get("ratio") if kind.startswith("ratio") else row["value"]
        if kind == "ratio<=":
            out.append((desc, fig, threshold, fig is not None and fig <= threshold))
        else:
            out.append((desc, fig, threshold, fig is not None and fig >= threshold))
    return out


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("only", nargs="*", help="run only these bench modules (e.g. discover rlpx)")
    # Two runs by default: a single run can lose a quarter of a CPU-time figure to a
    # process on the sibling core; the best of two rarely does (about 1 minute in all).
    ap.add_argument("--repeat", "-n", type=int, default=2, help="run each module N times; report the best")
    ap.add_argument("--verbose", "-v", action="store_true", help="print each figure as it is measured")
    ap.add_argument("--out", default="bench-results/latest.json")
    args = ap.parse_args(argv)
    here = os.path.dirname(__file__)
    names = sorted(m.name for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if n[len("bench_"):] in args.only]
    out_dir = os.path.dirname(args.out) or "."
    prev_path = os.path.join(out_dir, "previous.json")
    previous = _load(args.out)
    load0 = os.getloadavg()
    print("gethp2p benchmarks on %s, Python %s, %d cores, load average %.1f at start; best of %d run(s)"
          % (platform.machine(), platform.python_version(), os.cpu_count(), load0[0], args.repeat))
    t_all = time.perf_counter()
    runs = []
    for rep in range(args.repeat):
        report = Report(args.verbose)
        for name in names:
            mod = importlib.import_module("bench." + name)
            t0 = time.perf_counter()
            mod.run(report)
            print("  (run %d/%d: %s took %.1f s)" % (rep + 1, args.repeat, name, time.perf_counter() - t0))
            sys.stdout.flush()
        runs.append(report.rows)
    rows = combine(runs)
    prev_rows = {_key(r): r for r in (previous or {}).get("rows", [])}

    print()
    print("%-9s %-48s %11s %-9s %6s %11s %-20s %5s %8s" % (
        "group", "figure", "value", "unit", "spread", "limit", "limit is", "ratio", "vs last"))
    for row in rows:
        p = prev_rows.get(_key(row))
        change = (row["value"] / p["value"] - 1) if p and p.get("value") else None
        row["change_vs_previous"] = change
        print(_line(row, row.get("spread"), change))

    print()
    print("goals (this machine, this run):")
    gl = goals(rows)
    for desc, fig, threshold, met in gl:
        status = "not measured" if met is None else ("met" if met else "MISSED")
        print("  %-48s %11s  %s" % (desc, _num(fig) if fig is not None else "-", status))
    load1 = os.getloadavg()
    print("(load average %.1f at the end; %.0f s in all. The discv4 codec and the one-thread RLPx figures are"
          " CPU time of the measuring thread, best of short slices; the others are wall-clock time and drop"
          " when other processes load the machine: compare ratios, and use --repeat N for the best of N.)"
          % (load1[0], time.perf_counter() - t_all))

    os.makedirs(out_dir, exist_ok=True)
    if previous is not None:
        with open(prev_path, "w") as f:
            json.dump(previous, f, indent=1)
    with open(args.out, "w") as f:
        json.dump({"time": time.time(), "python": platform.python_version(), "repeat": args.repeat,
                   "modules": names, "load_average": [load0[0], load1[0]], "rows": rows,
                   "goals": [{"goal": d, "figure": fig, "threshold": t, "met": m} for d, fig, t, m in gl]},
                  f, indent=1)
    print("figures written to %s (the previous run's kept in %s)" % (args.out, prev_path))


if __name__ == "__main__":
    main()
