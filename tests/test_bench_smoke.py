"""Smoke tests of the bench modules with tiny parameters (figures exist and are positive;
nothing here is timed) and of the runner's combining of runs and goals."""

import math

from bench import __main__ as runner
from bench import bench_load, bench_server, bench_table


class _Collect:
    def __init__(self):
        self.rows = []

    def add(self, group, name, value, unit, limit=None, limit_name=None):
        self.rows.append({"group": group, "name": name, "value": value, "unit": unit,
                          "limit": limit, "limit_name": limit_name})


def _positive(rows):
    assert rows
    for r in rows:
        assert isinstance(r["value"], (int, float)) and math.isfinite(r["value"]), r
        assert r["value"] > 0, r
        if r["limit"] is not None:
            assert r["limit"] > 0, r


def test_sim_network_tables_are_kademlia_views():
    net = bench_table.SimNetwork(300, seed=5)
    assert net.keys == sorted(net.keys)
    known = net.known(7)
    assert 7 not in known and len(set(known)) == len(known)
    # At most bucketSize nodes per log distance to node 7.
    per_dist = {}
    for j in known:
        d = (net.keys[j] ^ net.keys[7]).bit_length()
        per_dist[d] = per_dist.get(d, 0) + 1
    assert max(per_dist.values()) <= bench_table.bucketSize
    # The network's closest node to 7 is always known (its own subtree is searched to the end).
    nearest = min((j for j in range(300) if j != 7), key=lambda j: net.keys[j] ^ net.keys[7])
    assert nearest in known


def test_bench_table_tiny():
    rep = _Collect()
    bench_table.bench_lookups(rep, 200, 3)
    bench_table.bench_memory(rep)
    _positive(rep.rows)
    names = [r["name"] for r in rep.rows]
    assert any(n.startswith("lookups/s") for n in names)
    assert any(n.startswith("memory per table entry") for n in names)


def test_bench_server_tiny():
    rep = _Collect()
    bench_server.bench_server(rep, n_peers=3, client_threads=2)
    _positive(rep.rows)
    by = {r["name"]: r["value"] for r in rep.rows}
    # Each peer: run_peer, its read and ping loops, one protocol thread; counted once
    # every peer has started them (a peer-add event comes before they start).
    assert by["threads per peer"] == 4
    # The handshake workers are counted apart: at least one, at most one per connection.
    assert 1 <= by["inbound handshake workers after 3 peers"] <= 3


def test_bench_load_tiny():
    """The load generator runs against a p2pnode process and every figure comes out."""
    rep = _Collect()
    bench_load.run(rep, seconds=0.3, limit_seconds=0.05)
    _positive(rep.rows)
    names = {r["name"] for r in rep.rows}
    assert {"node CPU per answered handshake", "node CPU per pong", "node cores busy, ping load"} <= names


def test_runner_combine_best_of_and_goals():
    run1 = [{"group": "rlpx", "name": "ECIES encrypt+decrypt (194 B)", "value": 4000.0, "unit": "ops/s",
             "limit": None, "limit_name": None},
            {"group": "table", "name": "lookup time", "value": 12.0, "unit": "ms", "limit": None,
             "limit_name": None},
            {"group": "discover", "name": "discv4 ping decode+recover", "value": 80.0, "unit": "packets/s",
             "limit": 100.0, "limit_name": "raw recover", "ratio": 0.8}]
    run2 = [dict(run1[0], value=6000.0), dict(run1[1], value=10.0),
            dict(run1[2], value=90.0, limit=95.0, ratio=90.0 / 95.0)]
    rows = runner.combine([run1, run2])
    by = {r["name"]: r for r in rows}
    assert by["ECIES encrypt+decrypt (194 B)"]["value"] == 6000.0   # rate: the highest
    assert by["lookup time"]["value"] == 10.0                       # time: the lowest
    assert abs(by["lookup time"]["spread"] - 0.2) < 1e-9
    d = by["discv4 ping decode+recover"]
    assert d["limit"] == 100.0                                      # the best limit
    assert abs(d["ratio"] - 90.0 / 95.0) < 1e-9                     # the best run's own ratio
    got = {desc: met for desc, fig, thr, met in runner.goals(rows)}
    assert got["ECIES encrypt+decrypt >= 5,000/s"] is True
    assert got["discv4 decode+recover >= 0.85 x raw recover"] is True
    assert got["RLPx handshakes >= 1,500/s"] is None                 # not measured
    assert "6,000" in runner._line(by["ECIES encrypt+decrypt (194 B)"], None, 0.5)


def test_runner_keeps_previous_run(tmp_path, capsys):
    out = tmp_path / "res" / "latest.json"
    runner.main(["--out", str(out), "no-such-module"])
    assert out.exists() and not (tmp_path / "res" / "previous.json").exists()
    first = out.read_text()
    runner.main(["--out", str(out), "no-such-module"])
    assert (tmp_path / "res" / "previous.json").read_text() == first
    printed = capsys.readouterr().out
    assert "goals" in printed and "not measured" in printed
