"""Run all benchmarks and print one table; also write bench-results/latest.json."""

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time


class Report:
    def __init__(self):
        self.rows = []

    def add(self, group, name, value, unit, limit=None, limit_name=None):
        row = {"group": group, "name": name, "value": value, "unit": unit,
               "limit": limit, "limit_name": limit_name}
        if limit:
            row["ratio"] = value / limit
        self.rows.append(row)
        self._print(row)
        sys.stdout.flush()

    @staticmethod
    def _print(row):
        line = "%-10s %-46s %14s %-9s" % (row["group"], row["name"], _num(row["value"]), row["unit"])
        if row.get("limit"):
            line += "  limit %14s (%s)  ratio %.2f" % (_num(row["limit"]), row["limit_name"] or "", row["ratio"])
        print(line)


def _num(v):
    if isinstance(v, float) and v < 100:
        return "%.2f" % v
    return "{:,.0f}".format(v)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("only", nargs="*", help="run only these bench modules (e.g. discover rlpx)")
    ap.add_argument("--out", default="bench-results/latest.json")
    args = ap.parse_args(argv)
    here = os.path.dirname(__file__)
    names = sorted(m.name for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if n[len("bench_"):] in args.only]
    report = Report()
    print("gethp2p benchmarks on %s, Python %s, %d cores" % (platform.machine(), platform.python_version(), os.cpu_count()))
    for name in names:
        mod = importlib.import_module("bench." + name)
        t0 = time.perf_counter()
        mod.run(report)
        print("  (%s took %.1f s)" % (name, time.perf_counter() - t0))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"time": time.time(), "python": platform.python_version(), "rows": report.rows}, f, indent=1)
    print("figures written to %s" % args.out)


if __name__ == "__main__":
    main()
