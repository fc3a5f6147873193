"""Tests for p2p/dial.py, following geth's p2p/dial_test.go, plus tests geth lacks.

The scenario tests drive ``dialstate`` through rounds on a fake clock: each
round reports finished tasks, asks for new ones and checks them against the
expected list (order ignored); the clock moves 16 seconds per round.
"""

from __future__ import annotations

import pprint
import socket
import threading
from dataclasses import dataclass, field
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2p import dial
from p2p.dial import (
    dynDialedConn, staticDialedConn, inboundConn, trustedConn, ConnFlag,
    DialError, DialHistory, DialTask, DiscoverTask, WaitExpireTask, TCPDialer,
    new_dial_state,
)
from p2p.discover.node import Node, NodeID, new_node
from p2p.netutil.net import Netlist
from p2p.peer import Peer

_pp = None


def _init():
    """Set up the pretty printer used in mismatch reports (geth configures spew here)."""
    global _pp
    _pp = pprint.PrettyPrinter(indent=1, width=100)


_init()


@dataclass
class DialTest:  # geth's dialtest
    init: object  # the dialstate, before and after the test
    rounds: list


@dataclass
class Round:  # geth's round
    peers: List = field(default_factory=list)  # current peer set
    done: List = field(default_factory=list)  # tasks that finished this round
    new: List = field(default_factory=list)  # the tasks new_tasks must return


class _Conn:  # stands in for server.Conn: new_tasks reads flags and id
    def __init__(self, flags, id):
        self.flags = flags
        self.id = id
        self.transport = None


def _peer(flags, id):  # geth: &Peer{rw: &conn{flags: ..., id: ...}}
    return Peer(_Conn(flags, id), {})


def run_dial_test(test: DialTest):
    vtime = 0.0
    running = 0

    def pm(ps):
        return {p.rw.id: p for p in ps}

    for i, rnd in enumerate(test.rounds):
        for task in rnd.done:
            running -= 1
            if running < 0:
                raise AssertionError("running task counter underflow")
            test.init.task_done(task, vtime)

        new = test.init.new_tasks(running, pm(rnd.peers), vtime)
        if not sametasks(new, rnd.new):
            state = {k: getattr(test.init, k) for k in (
                "max_dyn_dials", "lookup_running", "dialing", "lookup_buf", "static", "hist",
                "start", "bootnodes")}
            pytest.fail("round %d: new tasks mismatch:\ngot  %s\nwant %s\nstate: %s\nrunning: %d" % (
                i, _pp.pformat(new), _pp.pformat(rnd.new), _pp.pformat(state), running))

        vtime += 16.0  # the clock moves 16 seconds per round
        running += len(new)


class FakeTable(list):  # geth's fakeTable: a fixed list of "random" nodes
    def self(self):
        return Node()

    def close(self):
        pass

    def lookup(self, target):
        return None

    def resolve(self, target):
        return None

    def read_random_nodes(self, buf):
        n = min(len(buf), len(self))
        buf[:n] = self[:n]
        return n


def _n(i, ip=None):
    """A node with only an ID (and optionally an IP), like geth's &discover.Node{ID: uintID(i)}."""
    return new_node(uint_id(i), ip, 0, 0)


def _dyn(i):
    return DialTask(dynDialedConn, _n(i))


def _static(i):
    return DialTask(staticDialedConn, _n(i))


def _peers(*spec):
    return [_peer(flags, uint_id(i)) for flags, i in spec]


def test_dial_state_dyn_dial():
    run_dial_test(DialTest(
        init=new_dial_state(None, None, FakeTable(), 5, None),
        rounds=[
            # A lookup is started.
            Round(
                peers=_peers((staticDialedConn, 0), (dynDialedConn, 1), (dynDialedConn, 2)),
                new=[DiscoverTask()],
            ),
            # Its results are dialed once it is done.
            Round(
                peers=_peers((staticDialedConn, 0), (dynDialedConn, 1), (dynDialedConn, 2)),
                done=[DiscoverTask(results=[
                    _n(2),  # already connected: skipped
                    _n(3),
                    _n(4),
                    _n(5),
                    _n(6),  # beyond the 5 dynamic slots: kept for later
                    _n(7),
                ])],
                new=[_dyn(3), _dyn(4), _dyn(5)],
            ),
            # Two dials finish; peers plus running dials already fill the 5 slots.
            Round(
                peers=_peers((staticDialedConn, 0), (dynDialedConn, 1), (dynDialedConn, 2),
                             (dynDialedConn, 3), (dynDialedConn, 4)),
                done=[_dyn(3), _dyn(4)],
            ),
            # All slots are taken; only a wait for the history is scheduled.
            Round(
                peers=_peers((staticDialedConn, 0), (dynDialedConn, 1), (dynDialedConn, 2),
                             (dynDialedConn, 3), (dynDialedConn, 4), (dynDialedConn, 5)),
                done=[_dyn(5)],
                new=[WaitExpireTask(14.0)],
            ),
            # Peer 2 leaves; the buffered lookup results are used.
            Round(
                peers=_peers((staticDialedConn, 0), (dynDialedConn, 1), (dynDialedConn, 3),
                             (dynDialedConn, 4), (dynDialedConn, 5)),
                new=[_dyn(6)],
            ),
            # Peers 3 and 4 leave, dial 6 finishes: the last buffered result is dialed
            # and, as more are needed, a new lookup starts.
            Round(
                peers=_peers((staticDialedConn, 0), (dynDialedConn, 1), (dynDialedConn, 5)),
                done=[_dyn(6)],
                new=[_dyn(7), DiscoverTask()],
            ),
            # Peer 7 connects; still one slot short, but a lookup is already running.
            Round(
                peers=_peers((staticDialedConn, 0), (dynDialedConn, 1), (dynDialedConn, 5),
                             (dynDialedConn, 7)),
                done=[_dyn(7)],
            ),
            # The lookup returns nothing: another one starts right away.
            Round(
                peers=_peers((staticDialedConn, 0), (dynDialedConn, 1), (dynDialedConn, 5),
                             (dynDialedConn, 7)),
                done=[DiscoverTask()],
                new=[DiscoverTask()],
            ),
        ],
    ))


def test_dial_state_dyn_dial_bootnode():
    bootnodes = [_n(1), _n(2), _n(3)]
    table = FakeTable([_n(4), _n(5), _n(6), _n(7), _n(8)])
    run_dial_test(DialTest(
        init=new_dial_state(None, bootnodes, table, 5, None),
        rounds=[
            # Two random table nodes are dialed; the bootnodes wait for the fallback interval.
            Round(new=[_dyn(4), _dyn(5), DiscoverTask()]),
            # The dials fail; still inside the fallback interval.
            Round(done=[_dyn(4), _dyn(5)]),
            # Nothing changes.
            Round(),
            # Fallback interval passed: the first bootnode plus the expired random nodes.
            Round(new=[_dyn(1), _dyn(4), _dyn(5)]),
            # They fail; the second bootnode is next.
            Round(done=[_dyn(1), _dyn(4), _dyn(5)], new=[_dyn(2)]),
            # Then the third.
            Round(done=[_dyn(2)], new=[_dyn(3)]),
            # Back to the first bootnode; the random nodes have expired again.
            Round(done=[_dyn(3)], new=[_dyn(1), _dyn(4), _dyn(5)]),
            # A random node connects: no more bootnode dials.
            Round(
                peers=_peers((dynDialedConn, 4)),
                done=[_dyn(1), _dyn(4), _dyn(5)],
            ),
        ],
    ))


def test_dial_state_dyn_dial_from_table():
    # The table hands out the same "random" nodes, in this order, every time.
    table = FakeTable([_n(i) for i in range(1, 9)])
    run_dial_test(DialTest(
        init=new_dial_state(None, None, table, 10, None),
        rounds=[
            # 5 of the 8 random nodes are dialed, and a lookup starts.
            Round(new=[_dyn(1), _dyn(2), _dyn(3), _dyn(4), _dyn(5), DiscoverTask()]),
            # Nodes 1 and 2 connect; the lookup results are dialed.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2)),
                done=[_dyn(1), _dyn(2), DiscoverTask(results=[_n(10), _n(11), _n(12)])],
                new=[_dyn(10), _dyn(11), _dyn(12), DiscoverTask()],
            ),
            # 3, 4 and 5 fail; the lookup results connect.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2), (dynDialedConn, 10),
                             (dynDialedConn, 11), (dynDialedConn, 12)),
                done=[_dyn(3), _dyn(4), _dyn(5), _dyn(10), _dyn(11), _dyn(12)],
            ),
            # Waiting for the history; the running lookup keeps the loop busy, so no wait task.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2), (dynDialedConn, 10),
                             (dynDialedConn, 11), (dynDialedConn, 12)),
            ),
            # 3 and 4 are not retried: only the first two random nodes are tried and
            # those are connected already.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2), (dynDialedConn, 10),
                             (dynDialedConn, 11), (dynDialedConn, 12)),
            ),
        ],
    ))


def test_dial_state_net_restrict():
    table = FakeTable([
        _n(1, "127.0.0.1"), _n(2, "127.0.0.2"), _n(3, "127.0.0.3"), _n(4, "127.0.0.4"),
        _n(5, "127.0.2.5"), _n(6, "127.0.2.6"), _n(7, "127.0.2.7"), _n(8, "127.0.2.8"),
    ])
    restrict = Netlist()
    restrict.add("127.0.2.0/24")
    run_dial_test(DialTest(
        init=new_dial_state(None, None, table, 10, restrict),
        rounds=[
            Round(new=[DialTask(dynDialedConn, table[4]), DiscoverTask()]),
        ],
    ))


def test_dial_state_static_dial():
    want_static = [_n(1), _n(2), _n(3), _n(4), _n(5)]
    run_dial_test(DialTest(
        init=new_dial_state(want_static, None, FakeTable(), 0, None),
        rounds=[
            # The static nodes that are not connected are dialed.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2)),
                new=[_static(3), _static(4), _static(5)],
            ),
            # Every static node is connected or being dialed.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2), (staticDialedConn, 3)),
                done=[_static(3)],
            ),
            # All connected: only a wait for the history.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2), (staticDialedConn, 3),
                             (staticDialedConn, 4), (staticDialedConn, 5)),
                done=[_static(4), _static(5)],
                new=[WaitExpireTask(14.0)],
            ),
            # A round passes while the history expires; nothing new.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2), (staticDialedConn, 3),
                             (staticDialedConn, 4), (staticDialedConn, 5)),
            ),
            # Dropped static nodes are redialed at once, however they were first connected.
            Round(
                peers=_peers((dynDialedConn, 1), (staticDialedConn, 3), (staticDialedConn, 5)),
                new=[_static(2), _static(4)],
            ),
        ],
    ))


def test_dial_static_after_reset():
    want_static = [_n(1), _n(2)]
    rounds = [
        # Both static nodes are dialed.
        Round(peers=[], new=[_static(1), _static(2)]),
        # Both connect: nothing to dial, wait for the history.
        Round(
            peers=_peers((staticDialedConn, 1), (staticDialedConn, 2)),
            done=[_static(1), _static(2)],
            new=[WaitExpireTask(30.0)],
        ),
    ]
    d_test = DialTest(init=new_dial_state(want_static, None, FakeTable(), 0, None), rounds=rounds)
    run_dial_test(d_test)
    for n in want_static:
        d_test.init.remove_static(n)
        d_test.init.add_static(n)
    # Removing and re-adding cleared the history, so the same rounds play again.
    run_dial_test(d_test)


def test_dial_state_cache():
    want_static = [_n(1), _n(2), _n(3)]
    run_dial_test(DialTest(
        init=new_dial_state(want_static, None, FakeTable(), 0, None),
        rounds=[
            # The unconnected static nodes are dialed.
            Round(peers=[], new=[_static(1), _static(2), _static(3)]),
            # Every static node is connected or being dialed.
            Round(
                peers=_peers((staticDialedConn, 1), (staticDialedConn, 2)),
                done=[_static(1), _static(2)],
            ),
            # Node 3's dial is done; a task waits for its history entry to expire.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2)),
                done=[_static(3)],
                new=[WaitExpireTask(14.0)],
            ),
            # Still within node 3's history window.
            Round(peers=_peers((dynDialedConn, 1), (dynDialedConn, 2))),
            # Expired: node 3 is dialed again.
            Round(
                peers=_peers((dynDialedConn, 1), (dynDialedConn, 2)),
                new=[_static(3)],
            ),
        ],
    ))


class _FakeServer:
    """The parts of Server that tasks use."""

    def __init__(self, ntab=None, dialer=None, setup_conn=None):
        self.ntab = ntab
        self.dialer = dialer
        self.quit = threading.Event()
        self.last_lookup = None
        self.setup_calls = []
        self._setup = setup_conn

    def setup_conn(self, fd, flags, dest):
        self.setup_calls.append((fd, flags, dest))
        return self._setup(fd, flags, dest) if self._setup else None


def test_dial_resolve():
    resolved = new_node(uint_id(1), "127.0.55.234", 3333, 4444)
    table = ResolveMock(answer=resolved)
    state = new_dial_state(None, None, table, 0, None)

    # The task is created for the incomplete node.
    dest = new_node(uint_id(1), None, 0, 0)
    state.add_static(dest)
    tasks = state.new_tasks(0, None, 0.0)
    assert tasks == [DialTask(staticDialedConn, dest)], "expected dial task, got %r" % (tasks,)

    # Running it resolves the ID exactly once (the dial itself fails: deadline passed).
    srv = _FakeServer(ntab=table, dialer=TCPDialer(deadline=dial._now() - 5 * 60))
    tasks[0].do(srv)
    assert table.resolve_calls == [dest.id], "wrong resolve calls, got %r" % (table.resolve_calls,)
    assert srv.setup_calls == []

    # Once done, the static entry carries the resolved endpoint.
    state.task_done(tasks[0], dial._now())
    assert state.static[uint_id(1)].dest is resolved, "state.dest not updated"


def sametasks(a, b) -> bool:
    """Same tasks in any order (geth compares each pair with reflect.DeepEqual)."""
    if len(a) != len(b):
        return False
    for ta in a:
        if not any(ta == tb for tb in b):
            return False
    return True


def uint_id(i: int) -> NodeID:
    return NodeID(i.to_bytes(4, "big") + bytes(60))


class ResolveMock:  # geth's resolveMock, the table of test_dial_resolve
    def __init__(self, answer=None):
        self.resolve_calls = []
        self.answer = answer

    def resolve(self, id):
        self.resolve_calls.append(id)
        return self.answer

    def self(self):
        return Node()

    def close(self):
        pass

    def lookup(self, target):
        return None

    def read_random_nodes(self, buf):
        return 0


# ---------------------------------------------------------------------------
# Tests geth does not have.


def test_same_tasks_compares_contents():
    assert sametasks([_dyn(1), DiscoverTask()], [DiscoverTask(), _dyn(1)])
    assert not sametasks([_dyn(1)], [_static(1)])
    assert not sametasks([_dyn(1)], [_dyn(2)])
    assert not sametasks([DiscoverTask(results=[_n(1)])], [DiscoverTask()])
    assert not sametasks([WaitExpireTask(14.0)], [WaitExpireTask(30.0)])
    assert not sametasks([_dyn(1)], [_dyn(1), _dyn(1)])
    assert DialTask(dynDialedConn, _n(1), resolve_delay=60.0) != _dyn(1)


def test_conn_flag_string():
    assert str(dynDialedConn) == "dyndial"
    assert str(staticDialedConn | trustedConn) == "trusted-staticdial"
    assert str(inboundConn | trustedConn) == "trusted-inbound"
    assert "%s" % ConnFlag(0) == ""
    assert [int(f) for f in (dynDialedConn, staticDialedConn, inboundConn, trustedConn)] == [1, 2, 4, 8]


def test_task_strings():
    t = DialTask(staticDialedConn, new_node(uint_id(7), "127.0.0.1", 30301, 30303))
    assert str(t) == "staticdial 00000007%s 127.0.0.1:30303" % ("00" * 4)
    t6 = DialTask(dynDialedConn, new_node(uint_id(7), "::1", 1, 2))
    assert str(t6).endswith(" [::1]:2")
    assert str(DialTask(dynDialedConn, _n(1))).endswith(" <nil>:0")
    assert str(DiscoverTask()) == "discovery lookup"
    assert str(DiscoverTask(results=[_n(1), _n(2)])) == "discovery lookup (2 results)"
    assert str(WaitExpireTask(14.0)) == "wait for dial hist expire (14s)"
    assert str(WaitExpireTask(90.5)) == "wait for dial hist expire (1m30.5s)"
    assert str(WaitExpireTask(60.0)) == "wait for dial hist expire (1m0s)"
    assert str(WaitExpireTask(0.0)) == "wait for dial hist expire (0s)"
    assert str(WaitExpireTask(3600.0)) == "wait for dial hist expire (1h0m0s)"
    assert "00000007" in repr(t) and "staticdial" in repr(t)


def test_dial_history_heap():
    h = DialHistory()
    h.add(uint_id(1), 50.0)
    h.add(uint_id(2), 10.0)
    h.add(uint_id(3), 30.0)
    assert len(h) == 3
    assert h.min().id == uint_id(2) and h.min().exp == 10.0
    assert h.contains(uint_id(3)) and not h.contains(uint_id(4))
    assert h.remove(uint_id(2)) and not h.remove(uint_id(2))
    assert h.min().id == uint_id(3)
    h.expire(30.0)  # an entry expiring exactly now stays (strictly before now goes)
    assert h.contains(uint_id(3))
    h.expire(30.5)
    assert not h.contains(uint_id(3)) and h.min().id == uint_id(1) and len(h) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "remove", "expire"]),
                          st.integers(0, 6), st.integers(0, 100)), max_size=40))
def test_dial_history_matches_model(ops):
    h = DialHistory()
    model = []  # list of (id, exp)
    for op, i, t in ops:
        id = uint_id(i)
        if op == "add":
            h.add(id, float(t))
            model.append((id, float(t)))
        elif op == "remove":
            removed = h.remove(id)
            idx = next((k for k, (mid, _) in enumerate(model) if mid == id), None)
            assert removed == (idx is not None)
            if removed:
                # Either entry for a duplicated id may go; keep the model in step with the heap.
                model = sorted(model, key=lambda e: e[1])
                left = sorted(((p.id, p.exp) for p in h), key=lambda e: e[1])
                assert len(left) == len(model) - 1
                model = left
        else:
            h.expire(float(t))
            model = [e for e in model if not e[1] < t]
        assert len(h) == len(model)
        if model:
            assert h.min().exp == min(e[1] for e in model)
        for k in range(7):
            assert h.contains(uint_id(k)) == any(mid == uint_id(k) for mid, _ in model)


def test_check_dial_errors():
    self_node = new_node(uint_id(9), "127.0.0.9", 1, 1)

    class Table(FakeTable):
        def self(self):
            return self_node

    restrict = Netlist()
    restrict.add("127.0.0.0/24")
    s = new_dial_state(None, None, Table(), 4, restrict)
    peers = {uint_id(1): _peer(dynDialedConn, uint_id(1))}
    s.dialing[uint_id(2)] = dynDialedConn
    s.hist.add(uint_id(3), 100.0)
    assert s.check_dial(new_node(uint_id(1), "127.0.0.1", 0, 1), peers) is dial.errAlreadyConnected
    assert s.check_dial(new_node(uint_id(2), "127.0.0.2", 0, 1), peers) is dial.errAlreadyDialing
    assert s.check_dial(new_node(uint_id(3), "127.0.0.3", 0, 1), peers) is dial.errRecentlyDialed
    assert s.check_dial(self_node, peers) is dial.errSelf
    assert s.check_dial(new_node(uint_id(4), "127.0.1.4", 0, 1), peers) is dial.errNotWhitelisted
    assert s.check_dial(new_node(uint_id(5), "127.0.0.5", 0, 1), peers) is None
    assert str(dial.errNotWhitelisted) == "not contained in netrestrict whitelist"


def test_static_candidates_removed_when_self_or_not_whitelisted():
    self_node = new_node(uint_id(9), "127.0.0.9", 1, 1)

    class Table(FakeTable):
        def self(self):
            return self_node

    restrict = Netlist()
    restrict.add("127.0.0.0/24")
    ok = new_node(uint_id(1), "127.0.0.1", 1, 1)
    outside = new_node(uint_id(2), "127.0.1.2", 1, 1)
    s = new_dial_state([ok, outside, self_node], None, Table(), 0, restrict)
    assert sametasks(s.new_tasks(0, {}, 0.0), [DialTask(staticDialedConn, ok)])
    assert list(s.static) == [ok.id]
    assert s.dialing == {ok.id: staticDialedConn}


def test_new_tasks_does_not_dial_itself_from_lookup():
    s = new_dial_state(None, None, FakeTable(), 4, None)
    assert sametasks(s.new_tasks(0, {}, 0.0), [DiscoverTask()])
    # FakeTable.self() is the node with the all-zero ID: that lookup result is skipped.
    s.task_done(DiscoverTask(results=[Node(), _n(1)]), 1.0)
    assert sametasks(s.new_tasks(0, {}, 1.0), [_dyn(1), DiscoverTask()])


def _fail_dialer(log):
    class D:
        def dial(self, dest):
            log.append(dest)
            raise ConnectionRefusedError("connection refused")
    return D()


def test_dial_task_static_redial_after_resolve(monkeypatch):
    monkeypatch.setattr(dial, "_now", lambda: 1000.0)
    old = new_node(uint_id(1), "127.0.0.1", 1, 1111)
    moved = new_node(uint_id(1), "127.0.0.2", 2, 2222)
    table = ResolveMock(answer=moved)
    dialed = []

    class D:
        def dial(self, dest):
            dialed.append(dest)
            if dest is old:
                raise ConnectionRefusedError("connection refused")
            return "fd-%d" % dest.tcp

    srv = _FakeServer(ntab=table, dialer=D())
    t = DialTask(staticDialedConn, old)
    t.do(srv)
    assert dialed == [old, moved]
    assert table.resolve_calls == [old.id]
    assert srv.setup_calls == [("fd-2222", staticDialedConn, moved)]
    assert t.dest is moved and t.last_resolved == 1000.0 and t.resolve_delay == dial.initialResolveDelay


def test_dial_task_dynamic_failure_does_not_resolve():
    table = ResolveMock(answer=_n(1, None))
    dialed = []
    srv = _FakeServer(ntab=table, dialer=_fail_dialer(dialed))
    node = new_node(uint_id(1), "127.0.0.1", 1, 1)
    DialTask(dynDialedConn, node).do(srv)
    assert dialed == [node] and table.resolve_calls == [] and srv.setup_calls == []


def test_dial_task_setup_error_is_not_a_dial_error():
    table = ResolveMock(answer=new_node(uint_id(1), "127.0.0.2", 1, 1))
    setup_err = ValueError("handshake failed")

    class D:
        def dial(self, dest):
            return "fd"

    srv = _FakeServer(ntab=table, dialer=D(), setup_conn=lambda fd, flags, dest: setup_err)
    node = new_node(uint_id(1), "127.0.0.1", 1, 1)
    t = DialTask(staticDialedConn, node)
    assert t.dial(srv, node) is setup_err
    t.do(srv)
    assert table.resolve_calls == []  # only a failed connect triggers a resolve

    def raising(fd, flags, dest):
        raise setup_err

    srv2 = _FakeServer(ntab=table, dialer=D(), setup_conn=raising)
    assert t.dial(srv2, node) is setup_err
    err = t.dial(_FakeServer(dialer=_fail_dialer([])), node)
    assert isinstance(err, DialError) and isinstance(err.err, ConnectionRefusedError)


def test_dial_task_meters_outbound_connection(monkeypatch):
    from p2p import metrics
    monkeypatch.setattr(metrics, "Enabled", True)
    before = metrics.egressConnectMeter.count()

    class D:
        def dial(self, dest):
            return "fd"

    srv = _FakeServer(dialer=D())
    node = new_node(uint_id(1), "127.0.0.1", 1, 1)
    assert DialTask(dynDialedConn, node).dial(srv, node) is None
    (fd, flags, dest), = srv.setup_calls
    assert isinstance(fd, metrics.MeteredConn) and fd.conn == "fd"
    assert flags == dynDialedConn and dest is node
    assert metrics.egressConnectMeter.count() == before + 1


def test_dial_task_resolve_backoff(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(dial, "_now", lambda: clock[0])
    table = ResolveMock(answer=None)
    srv = _FakeServer(ntab=table)
    t = DialTask(staticDialedConn, _n(1))

    assert not t.resolve(srv)  # first attempt always queries
    assert len(table.resolve_calls) == 1 and t.resolve_delay == 120.0
    clock[0] = 119.0
    assert not t.resolve(srv)  # throttled
    assert len(table.resolve_calls) == 1
    delays = []
    for _ in range(8):
        clock[0] += t.resolve_delay
        assert not t.resolve(srv)
        delays.append(t.resolve_delay)
    assert delays == [240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0, 3600.0, 3600.0]
    assert len(table.resolve_calls) == 9

    found = new_node(uint_id(1), "127.0.0.1", 1, 1)
    table.answer = found
    clock[0] += 3600.0
    assert t.resolve(srv)
    assert t.dest is found and t.resolve_delay == dial.initialResolveDelay

    # Without discovery nothing is resolved.
    assert not DialTask(staticDialedConn, _n(2)).resolve(_FakeServer(ntab=None))


def test_dial_task_incomplete_without_discovery_does_not_dial():
    dialed = []
    srv = _FakeServer(ntab=None, dialer=_fail_dialer(dialed))
    DialTask(staticDialedConn, _n(1)).do(srv)
    assert dialed == []


def test_tcp_dialer_connects_to_listener():
    ln = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ln.bind(("127.0.0.1", 0))
    ln.listen(1)
    port = ln.getsockname()[1]
    try:
        fd = TCPDialer().dial(new_node(uint_id(1), "127.0.0.1", 0, port))
        try:
            peer, addr = ln.accept()
            with peer:
                assert fd.getpeername() == ("127.0.0.1", port)
                assert addr == fd.getsockname()
                assert fd.gettimeout() is None  # the timeout only covers the connect
                fd.sendall(b"ping")
                assert peer.recv(4) == b"ping"
                peer.sendall(b"pong")
                assert fd.recv(4) == b"pong"
        finally:
            fd.close()
    finally:
        ln.close()


def test_tcp_dialer_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        ln = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        ln.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    with ln:
        ln.listen(1)
        port = ln.getsockname()[1]
        with TCPDialer(timeout=5.0).dial(new_node(uint_id(1), "::1", 0, port)) as fd:
            peer, _ = ln.accept()
            with peer:
                assert fd.getpeername()[:2] == ("::1", port)


def test_tcp_dialer_errors():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(ConnectionRefusedError):
        TCPDialer(timeout=5.0).dial(new_node(uint_id(1), "127.0.0.1", 0, port))
    with pytest.raises(socket.timeout):
        TCPDialer(deadline=dial._now() - 1).dial(new_node(uint_id(1), "127.0.0.1", 0, port))
    with pytest.raises(OSError):
        TCPDialer().dial(_n(1))  # no IP
    assert TCPDialer().timeout is None  # a zero net.Dialer: no bound; the server passes its own
    from p2p import server
    assert server.defaultDialTimeout == 15.0  # what the server's default TCPDialer gets


def _run_in_thread(fn):
    done = threading.Event()
    errors = []

    def body():
        try:
            fn()
        except BaseException as e:  # reported to the test
            errors.append(e)
        finally:
            done.set()

    th = threading.Thread(target=body, name="test.dial.task", daemon=True)
    th.start()
    return th, done, errors


def test_discover_task_wait_ends_on_quit():
    table = FakeTable()
    calls = []
    table.lookup = lambda target: calls.append(target) or []
    srv = _FakeServer(ntab=table)
    srv.last_lookup = dial._now()  # the next lookup is lookupInterval away
    t = DiscoverTask()
    th, done, errors = _run_in_thread(lambda: t.do(srv))
    srv.quit.set()
    assert done.wait(5.0), "DiscoverTask.do did not return after quit"
    th.join(5.0)
    assert not errors and calls == [] and t.results == []


def test_discover_task_runs_lookup(monkeypatch):
    found = [_n(1), _n(2)]
    targets = []

    class Table(FakeTable):
        def lookup(self, target):
            targets.append(target)
            return found

    srv = _FakeServer(ntab=Table())
    monkeypatch.setattr(dial, "_now", lambda: 500.0)
    t = DiscoverTask()
    t.do(srv)  # first lookup: no wait
    assert t.results == found and srv.last_lookup == 500.0
    assert len(targets) == 1 and isinstance(targets[0], NodeID) and len(targets[0]) == 64
    srv.last_lookup = 500.0 - dial.lookupInterval  # the interval has just passed: no wait
    t2 = DiscoverTask()
    t2.do(srv)
    assert t2.results == found and len(targets) == 2 and targets[0] != targets[1]


def test_discover_task_skips_lookup_after_quit():
    calls = []

    class Table(FakeTable):
        def lookup(self, target):
            calls.append(target)
            return None  # like geth's fakeTable: nil

    srv = _FakeServer(ntab=Table())
    t = DiscoverTask()
    t.do(srv)
    assert len(calls) == 1 and t.results == []  # None became an empty result
    srv.quit.set()
    DiscoverTask().do(srv)
    assert len(calls) == 1


def test_wait_expire_task_ends_on_quit():
    srv = _FakeServer()
    th, done, errors = _run_in_thread(lambda: WaitExpireTask(3600.0).do(srv))
    srv.quit.set()
    assert done.wait(5.0), "WaitExpireTask.do did not return after quit"
    th.join(5.0)
    assert not errors


def test_wait_expire_task_returns_after_duration():
    srv = _FakeServer()
    WaitExpireTask(0.0).do(srv)  # returns without quit
    WaitExpireTask(-1.0).do(srv)
    assert not srv.quit.is_set()
