"""Smoke test of bench/bench_simulations.py with tiny sizes (figures exist; nothing is timed)."""

import math

from bench import bench_simulations


class _Collect:
    def __init__(self):
        self.rows = []

    def add(self, group, name, value, unit, limit=None, limit_name=None):
        self.rows.append((group, name, value, unit))


def test_bench_simulations_smoke():
    r = _Collect()
    bench_simulations.ring(r, "sim", 3)
    bench_simulations.sse(r, 200)
    names = [row[1] for row in r.rows]
    assert names == ["sim adapter: start 3 nodes", "sim adapter: ring-connect 3 nodes",
                     "sim adapter: memory per node (3 nodes)", "sim adapter: shutdown 3 nodes",
                     "GET /events: msg events to our client"]
    for _, name, value, _ in r.rows:
        assert math.isfinite(value), name
        assert value > 0 or "memory" in name, name
