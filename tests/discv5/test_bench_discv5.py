"""Smoke test of bench/bench_discv5.py with tiny parameters (figures exist, nodes close)."""

from bench import bench_discv5


class _Report:
    def __init__(self):
        self.rows = []

    def add(self, group, name, value, unit, limit=None, limit_name=None):
        self.rows.append((group, name, value, unit, limit))


def test_bench_discv5_tiny():
    rep = _Report()
    bench_discv5.bench_codec(rep, seconds=0.02)
    bench_discv5.bench_memory(rep, n=3, settle=0.2)
    names = [r[1] for r in rep.rows]
    assert "discv5 ping decode+recover" in names and "threads per discv5 node" in names
    assert all(r[0] == "discv5" and r[2] > 0 for r in rep.rows)
    assert all(r[4] > 0 for r in rep.rows if "code+" in r[1])
