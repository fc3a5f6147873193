"""Twins of geth's p2p/discv5/net_test.go, and tests of the Network's state machine and loop.

``lookup_testnet`` is geth's ``preminedTestnet``: node IDs at known log distances from
a target (mined by geth's ``mine``; the IDs are copied from net_test.go). Each fake
node's UDP port encodes its distance, and a findnode to it is answered with the
nodes one step closer, so a lookup must walk down to the target's bucket.
"""

import queue
import threading


from p2p import crypto
from p2p.discv5 import mclock, udp
from p2p.discv5.net import (
    lowPort, new_network, known, unknown, verifywait, rlp_hash,
)
from p2p.discv5.node import distcmp, logdist, must_hex_id, new_node, NodeID
from p2p.discv5.nodeevent_string import (
    findnodeHashPacket, neighborsPacket, pingPacket, pongPacket, topicRegisterPacket,
)
from p2p.discv5.table import bucketSize
from tests.helpers import load_lookup_testnet

def test_network_lookup(crypto_backend):
    key = crypto.generate_key()
    network = new_network(lookup_testnet, key.public_key, "", None)
    lookup_testnet.net = network
    try:
        # a seed, or the lookup would end at once
        seeds = [new_node(lookup_testnet.dists[256][0], "10.0.2.99", lowPort + 256, 999)]
        network.set_fallback_nodes(seeds)
        # geth sleeps 3 s here; we wait for the refresh that the seeds started
        assert network.req_refresh(None).wait(30)

        results = network.lookup(lookup_testnet.target)
        assert len(results) == bucketSize, "wrong number of results"
        assert not has_duplicates(results), "result set contains duplicate entries"
        assert sorted_by_distance_to(lookup_testnet.target_sha, results), "result set not sorted by distance to target"
    finally:
        network.close()
    assert network.closed.is_set()


_TARGET, _TARGET_SHA_HEX, _DISTS = load_lookup_testnet()
_TARGET_SHA = bytes.fromhex(_TARGET_SHA_HEX)


class PreminedTestnet:
    """geth's preminedTestnet: the transport of the lookup test."""

    def __init__(self, target, target_sha, dists):
        self.target = target
        self.target_sha = target_sha
        self.dists = dists
        self.net = None

    def send_findnode(self, to, target):
        raise AssertionError("sendFindnode called")

    def send_findnode_hash(self, to, target):
        # the port says how far the node is
        if to.udp <= lowPort:
            raise AssertionError("query to node at or below distance 0")
        nxt = to.udp - 1
        result = [udp.node_to_rpc(new_node(id, "10.0.2.99", nxt, i + 1 + lowPort))
                  for i, id in enumerate(self.dists.get(to.udp - lowPort, []))]
        inject_response(self.net, to, neighborsPacket, udp.Neighbors(nodes=result))

    def send_ping(self, to, addr, topics):
        inject_response(self.net, to, pongPacket, udp.Pong(reply_tok=b"\x01"))
        return b"\x01"

    def send(self, to, ptype, data):
        if ptype == pingPacket:
            inject_response(self.net, to, pongPacket, udp.Pong(reply_tok=b"\x01"))
        elif ptype == pongPacket:
            pass
        elif ptype == findnodeHashPacket:
            self.send_findnode_hash(to, data.target)
        else:
            raise AssertionError("send(%s)" % ptype)
        return b"\x02"

    def send_neighbours(self, to, nodes):
        raise AssertionError("sendNeighbours called")

    def send_topic_query(self, to, topic):
        raise AssertionError("sendTopicQuery called")

    def send_topic_nodes(self, to, query_hash, nodes):
        raise AssertionError("sendTopicNodes called")

    def send_topic_register(self, to, topics, idx, pong):
        raise AssertionError("sendTopicRegister called")

    def close(self):
        pass

    def local_addr(self):
        return ("10.0.1.1", 40000)

    def mine(self, target):
        """Find bucketSize*10 keys at various distances from ``target`` (geth prints a literal)."""
        self.target = target
        self.target_sha = crypto.keccak256(target)
        self.dists = {}
        found = 0
        while found < bucketSize * 10:
            k = crypto.generate_key()
            id = NodeID(k.public_key.raw)
            ld = logdist(self.target_sha, crypto.keccak256(id))
            if len(self.dists.setdefault(ld, [])) < bucketSize:
                self.dists[ld].append(id)
                found += 1
        return self.dists


def inject_response(net, frm, ev, packet):
    net.req_read_packet(udp.IngressPacket(remote_id=frm.id, remote_addr=frm.addr(), ev=ev, data=packet))


lookup_testnet = PreminedTestnet(
    must_hex_id(_TARGET), _TARGET_SHA, {d: [must_hex_id(h) for h in ids] for d, ids in _DISTS.items()})


def has_duplicates(nodes):
    ids = [n.id for n in nodes]
    return len(set(ids)) != len(ids)


def sorted_by_distance_to(target, nodes):
    return all(distcmp(target, a.sha, b.sha) <= 0 for a, b in zip(nodes, nodes[1:]))


def test_premined_testnet_mine():
    """mine() finds keys at the distances it reports (geth's helper, run small)."""
    tn = PreminedTestnet(None, None, {})
    target = NodeID(crypto.generate_key().public_key.raw)
    dists = tn.mine(target)
    assert sum(len(v) for v in dists.values()) == bucketSize * 10
    for ld, ids in dists.items():
        for id in ids:
            assert logdist(tn.target_sha, crypto.keccak256(id)) == ld


# ---------------------------------------------------------------------------
# Tests geth did not have: the state machine through a recording transport.


class RecordingTransport:
    """Records what the Network sends; answers nothing."""

    def __init__(self):
        self.sent = []
        self.cond = threading.Condition()
        self.ctr = 0

    def _rec(self, what, *args):
        with self.cond:
            self.ctr += 1
            h = self.ctr.to_bytes(32, "big")
            self.sent.append((what, args, h))
            self.cond.notify_all()
            return h

    def wait_for(self, what, n=1, timeout=20):
        with self.cond:
            ok = self.cond.wait_for(lambda: sum(1 for s in self.sent if s[0] == what) >= n, timeout)
            assert ok, "no %s sent: %s" % (what, [s[0] for s in self.sent])
            return [s for s in self.sent if s[0] == what]

    def send_ping(self, to, addr, topics):
        return self._rec("ping", to, addr, list(topics))

    def send_neighbours(self, to, nodes):
        self._rec("neighbours", to, list(nodes))

    def send_findnode_hash(self, to, target):
        self._rec("findnodeHash", to, target)

    def send_topic_register(self, to, topics, idx, pong):
        self._rec("topicRegister", to, topics, idx, pong)

    def send_topic_nodes(self, to, query_hash, nodes):
        self._rec("topicNodes", to, query_hash, list(nodes))

    def send(self, to, ptype, data):
        return self._rec(int(ptype), to, data)

    def local_addr(self):
        return ("127.0.0.1", 30303)

    def close(self):
        pass


def _state_of(net, id):
    res = []
    net.req_table_op(lambda: res.append(net.nodes[id].state if id in net.nodes else None))
    return res[0]


def _remote():
    key = crypto.generate_key()
    return key, NodeID(key.public_key.raw)


def _ping_pkt(rid, h=b"\x07" * 32, topics=()):
    ep = udp.RpcEndpoint(ip=udp._ip(bytes([127, 0, 0, 1])), udp=30304, tcp=30304)
    return udp.IngressPacket(remote_id=rid, remote_addr=("127.0.0.1", 30304), ev=pingPacket, hash=h,
                             data=udp.Ping(from_=ep, to=ep, expiration=2 ** 40, topics=list(topics)))


def test_network_ping_from_unknown_node_reaches_known(crypto_backend):
    """unknown --ping--> verifywait (we answer and ping back) --pong--> known."""
    tr = RecordingTransport()
    net = new_network(tr, crypto.generate_key().public_key, "<no database>", None)
    try:
        _, rid = _remote()
        net.req_read_packet(_ping_pkt(rid))
        pong = tr.wait_for(int(pongPacket))[0]
        assert pong[1][1].reply_tok == b"\x07" * 32
        ping = tr.wait_for("ping")[0]
        assert _state_of(net, rid) is verifywait
        reply = udp.IngressPacket(remote_id=rid, remote_addr=("127.0.0.1", 30304), ev=pongPacket, hash=b"\x09" * 32,
                                  data=udp.Pong(reply_tok=ping[2], topic_hash=rlp_hash([])))
        net.req_read_packet(reply)
        assert _state_of(net, rid) is known
        assert net.tab.count == 1
    finally:
        net.close()


def test_network_pong_with_wrong_token_is_ignored(crypto_backend):
    tr = RecordingTransport()
    net = new_network(tr, crypto.generate_key().public_key, "<no database>", None)
    try:
        _, rid = _remote()
        net.req_read_packet(_ping_pkt(rid))
        tr.wait_for("ping")
        bad = udp.IngressPacket(remote_id=rid, remote_addr=("127.0.0.1", 30304), ev=pongPacket, hash=b"\x09" * 32,
                                data=udp.Pong(reply_tok=b"nope"))
        net.req_read_packet(bad)
        assert _state_of(net, rid) is verifywait
    finally:
        net.close()


def test_network_unanswered_ping_times_out_to_unknown():
    """verifyinit/verifywait without a pong: after respTimeout the node is unknown again."""
    clock = mclock.Simulated()
    tr = RecordingTransport()
    result = []

    def body():
        net = new_network(tr, crypto.generate_key().public_key, "<no database>", None, clock=clock)
        _, rid = _remote()
        net.req_read_packet(_ping_pkt(rid))
        clock.sleep(0.1)
        result.append(_state_of(net, rid))
        n = []
        net.req_table_op(lambda: n.append(net.nodes[rid]))
        clock.sleep(1)
        # unknown again, and (departure discv5-forget-nodes) forgotten: nothing refers to it
        result.append(n[0].state)
        result.append(_state_of(net, rid))
        net.close()

    t = clock.go(body, "body")
    t.join(60)
    assert not t.is_alive()
    assert result == [verifywait, unknown, None]
    assert clock.join_all(30)


# departure: discv5-pong-timeout-clears-echo: the test
def test_network_node_whose_ping_timed_out_can_be_pinged_again():
    """A contested node that missed its ping and came back is pinged when contested again.

    In geth 1.8.16 the timed-out ping's echo stays set, so the second contest sends
    no ping (ping returns early), no pong timeout comes, and the node stays contested
    in the table for ever; geth 1.9.17 clears the echo on the timeout.
    """
    from p2p.discv5.net import contested, unresponsive

    clock = mclock.Simulated()
    tr = RecordingTransport()
    result = []

    def body():
        net = new_network(tr, crypto.generate_key().public_key, "<no database>", None, clock=clock)
        _, rid = _remote()

        def pong(echo, h):
            net.req_read_packet(udp.IngressPacket(remote_id=rid, remote_addr=("127.0.0.1", 30304), ev=pongPacket,
                                                  hash=h, data=udp.Pong(reply_tok=echo, topic_hash=rlp_hash([]))))

        def contest():
            net.req_table_op(lambda: net.transition(net.nodes[rid], contested))

        net.req_read_packet(_ping_pkt(rid))
        clock.sleep(0.1)
        pong(tr.sent[-1][2], b"\x09" * 32)  # the answer to the victim's ping: known
        result.append(_state_of(net, rid))
        contest()  # pinged, no answer: unresponsive after respTimeout
        clock.sleep(1)
        result.append(_state_of(net, rid))
        net.req_read_packet(_ping_pkt(rid, h=b"\x0a" * 32))  # back: a ping makes it known at once
        clock.sleep(0.1)
        result.append(_state_of(net, rid))
        contest()
        clock.sleep(1)
        result.append(sum(1 for what, _, _ in tr.sent if what == "ping"))
        result.append(_state_of(net, rid))
        net.close()

    t = clock.go(body, "body")
    t.join(60)
    assert not t.is_alive()
    # three pings: the verification and one per contest; the second contest times out too
    assert result == [known, unresponsive, known, 3, unresponsive]
    assert clock.join_all(30)


def test_network_survives_bad_events(crypto_backend):
    """Events that are invalid in a state, and malformed data, leave the loop running."""
    tr = RecordingTransport()
    net = new_network(tr, crypto.generate_key().public_key, "<no database>", None)
    try:
        _, rid = _remote()
        # a neighbors packet from an unknown node: invalid in 'unknown'
        net.req_read_packet(udp.IngressPacket(remote_id=rid, remote_addr=("127.0.0.1", 30304),
                                              ev=neighborsPacket, hash=b"\x01" * 32, data=udp.Neighbors()))
        # a ping whose data is not a ping at all
        net.req_read_packet(udp.IngressPacket(remote_id=rid, remote_addr=("127.0.0.1", 30304),
                                              ev=pingPacket, hash=b"\x01" * 32, data=None))
        # the loop still answers
        assert _state_of(net, rid) is unknown
        net.req_read_packet(_ping_pkt(rid))
        tr.wait_for(int(pongPacket))
    finally:
        net.close()


def test_network_topic_register_with_forged_ticket_is_refused(crypto_backend):
    """A topicRegister whose pong is not signed by us registers nothing."""
    tr = RecordingTransport()
    key = crypto.generate_key()
    net = new_network(tr, key.public_key, "<no database>", None)
    try:
        rkey, rid = _remote()
        net.req_read_packet(_ping_pkt(rid))
        ping = tr.wait_for("ping")[0]
        net.req_read_packet(udp.IngressPacket(remote_id=rid, remote_addr=("127.0.0.1", 30304), ev=pongPacket,
                                              hash=b"\x09" * 32, data=udp.Pong(reply_tok=ping[2], topic_hash=rlp_hash([]))))
        assert _state_of(net, rid) is known
        forged, _ = udp.encode_packet(rkey, pongPacket, udp.Pong(topic_hash=rlp_hash(["chat"]), wait_periods=[0]))
        net.req_read_packet(udp.IngressPacket(remote_id=rid, remote_addr=("127.0.0.1", 30304), ev=topicRegisterPacket,
                                              hash=b"\x0a" * 32, data=udp.TopicRegister(topics=["chat"], idx=0, pong=forged)))
        res = []
        net.req_table_op(lambda: res.append(net.topictab.get_entries("chat")))
        assert res == [[]]
    finally:
        net.close()


def test_network_close_ends_threads():
    """close() returns after the loop and its lookups have ended; requests after it fail."""
    tr = RecordingTransport()
    net = new_network(tr, crypto.generate_key().public_key, "<no database>", None)
    _, rid = _remote()
    net.set_fallback_nodes([new_node(rid, "127.0.0.1", 30305, 30305)])
    net.close()
    assert net.closed.is_set()
    assert net.req_table_op(lambda: None) is False
    assert net.lookup(rid) is not None


# departure: discv5-forget-nodes: the attack test of Network.nodes' bound
def test_network_ping_flood_from_fresh_identities_is_forgotten(crypto_backend):
    """N fresh identities ping a node over loopback UDP and never answer its pings.

    geth 1.8.16 keeps every one in ``Network.nodes`` for ever; here each goes back to
    unknown after respTimeout and, since nothing refers to it, is forgotten. An
    honest node that answers is still served and stays.
    """
    import socket
    import time

    from p2p.discover.udp import UDPConn

    N = 200
    key = crypto.generate_key()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    net = udp.listen_udp(key, UDPConn(sock), sock.getsockname(), "<no database>")
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    honest = None
    # wake the test whenever the loop has considered forgetting a node
    cond = threading.Condition()

    def forget_and_notify(n, *states):
        r = forget(n, *states)
        with cond:
            cond.notify_all()
        return r

    try:
        forget = net.forget_if_unused
        net.forget_if_unused = forget_and_notify
        victim = net.tab.self
        to = udp.RpcEndpoint(ip=udp._ip(bytes([127, 0, 0, 1])), udp=victim.udp, tcp=victim.udp)
        aport = attacker.getsockname()[1]
        frm = udp.RpcEndpoint(ip=udp._ip(bytes([127, 0, 0, 1])), udp=aport, tcp=aport)
        ids = set()
        # One identity at a time, until its pong comes back (a burst would overflow the
        # sockets' buffers, and UDP drops what does not fit): then the victim has taken
        # the identity in, answered it and pinged it back, and it is verifying.
        attacker.settimeout(5)
        for _ in range(N):
            k = crypto.generate_key()
            ids.add(k.public_key.raw)
            pkt, h = udp.encode_packet(k, pingPacket, udp.Ping(from_=frm, to=to, expiration=2 ** 40))
            deadline = time.monotonic() + 60  # the pure-Python backend checks ~3 signatures per ping
            answered = False
            while not answered:
                assert time.monotonic() < deadline, "the victim stopped answering pings"
                attacker.sendto(pkt, victim.addr())
                try:
                    while not answered:
                        data, _ = attacker.recvfrom(2048)
                        answered = data[udp.headSize] == int(pongPacket) and h in data
                except socket.timeout:
                    pass  # lost: send it again
        # none answers: after respTimeout each is unknown again, and forgotten
        with cond:
            assert cond.wait_for(lambda: not ids & set(net.nodes), timeout=60), \
                "%d of %d flooding identities still in Network.nodes" % (len(ids & set(net.nodes)), N)
        assert len(net.nodes) <= 1, len(net.nodes)
        # an honest node that answers is served and known
        added = queue.Queue()
        net.tab.node_added_hook = added.put
        hkey = crypto.generate_key()
        hsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        hsock.bind(("127.0.0.1", 0))
        honest = udp.listen_udp(hkey, UDPConn(hsock), hsock.getsockname(), "<no database>")
        honest.set_fallback_nodes([victim])
        assert honest.lookup(victim.id) is not None
        n = added.get(timeout=30)
        assert n.id == honest.tab.self.id
        assert _state_of(net, n.id) is known
    finally:
        net.tab.node_added_hook = None
        attacker.close()
        if honest is not None:
            honest.close()
        net.close()


# departure: discv5-forget-nodes: the attack test of idle known and unresponsive nodes
def test_network_bonded_then_silent_identities_are_forgotten(crypto_backend, monkeypatch):
    """Fresh identities bond over loopback UDP (ping, then pong), then never answer again.

    The attacker picks keys in one bucket of the victim's table (half of all keys
    qualify): the first 16 fill it, 16 more its replacement list, and every further
    one contests the bucket's last entry, which times out into ``unresponsive``, or
    pushes the oldest replacement off the list, still ``known``. geth 1.8.16 keeps
    every one in ``Network.nodes`` for ever. Here the sweep (``maxNodesBeforeSweep``,
    32 for the test) forgets them: a sweep keeps the bucket, its replacements, the
    identity bonding and one whose bond is still timing out (2 * bucketSize + 2), and
    the next comes 32 nodes later, so the map never holds more than
    2 * bucketSize + 2 + 32 + 1 = 67 nodes. A forgotten identity that comes back
    bonds again as a fresh node and is served, and an honest node bonds and is served.
    """
    from p2p.discv5 import net as netmod
    from tests.discv5.flood import Flooder, flood, start_victim

    N = 300
    monkeypatch.setattr(netmod, "maxNodesBeforeSweep", 32)
    bound = 2 * bucketSize + 2 + netmod.maxNodesBeforeSweep + 1
    net = start_victim()
    fl = Flooder(net.tab.self)
    honest = None
    seen = []  # len(net.nodes) whenever the loop considers a sweep (after every packet)
    cond = threading.Condition()  # wakes the test whenever a node changes state
    try:
        net._sweep_at = netmod.maxNodesBeforeSweep
        sweep, transition = net.sweep_unused_nodes, net.transition

        def sweep_and_record():
            seen.append(len(net.nodes))
            sweep()

        def notifying(transition):
            def transition_and_notify(n, nxt):
                transition(n, nxt)
                with cond:
                    cond.notify_all()
            return transition_and_notify

        net.sweep_unused_nodes, net.transition = sweep_and_record, notifying(transition)
        threads = threading.active_count()
        keys = []
        assert flood(net, fl, n=N, bucket=256, keys=keys) == N
        assert threading.active_count() <= threads  # no thread per identity
        ids = {NodeID(k.public_key.raw) for k in keys}
        in_map = []
        net.req_table_op(lambda: in_map.append(ids & set(net.nodes)))
        assert max(seen) <= bound, "Network.nodes reached %d (bound %d)" % (max(seen), bound)
        assert len(in_map[0]) <= bound, "%d of %d silent identities still in Network.nodes" % (len(in_map[0]), N)

        # a forgotten identity that comes back bonds as a fresh node, and is then served
        back = next(k for k in keys if NodeID(k.public_key.raw) not in in_map[0])
        assert fl.bond(back) is not None
        assert fl.findnode(back), "the victim did not answer a findnode of the bonded identity"
        assert _state_of(net, NodeID(back.public_key.raw)) is known

        # an honest node bonds and gets neighbours (the victim's table: identities of the flood)
        honest = start_victim()
        honest.transition = notifying(honest.transition)
        honest.set_fallback_nodes([net.tab.self])
        hid, vid = honest.tab.self.id, net.tab.self.id

        def bonded():  # both ways; plain reads of the maps, which only the loops change
            return (getattr(net.nodes.get(hid), "state", None) is known
                    and getattr(honest.nodes.get(vid), "state", None) is known)

        with cond:
            assert cond.wait_for(bonded, timeout=30), "the honest node did not bond with the victim"
        result = honest.lookup(honest.tab.self.id)
        assert any(n.id in ids for n in result), "the honest node got no neighbours from the victim"
    finally:
        fl.close()
        if honest is not None:
            honest.close()
        net.close()


def test_network_sweep_forgets_named_but_unasked_nodes(monkeypatch):
    """Nodes that only a neighbors reply named are swept once Network.nodes passes maxNodesBeforeSweep."""
    from p2p.discv5 import net as netmod

    monkeypatch.setattr(netmod, "maxNodesBeforeSweep", 50)  # 4096 fresh keys would take a while
    tr = RecordingTransport()
    net = new_network(tr, crypto.generate_key().public_key, "<no database>", None)
    try:
        net._sweep_at = netmod.maxNodesBeforeSweep
        sender = ("127.0.0.1", 30304)
        rns = [udp.RpcNode(ip=udp._ip(bytes([127, 0, 0, 1])), udp=30400, tcp=30400, id=_remote()[1])
               for _ in range(60)]
        errs = []
        net.req_table_op(lambda: errs.extend(net.intern_node_from_neighbours(sender, rn)[1] for rn in rns))
        assert errs == [None] * len(rns)
        sizes = []
        net.req_table_op(lambda: sizes.append(len(net.nodes)))
        assert sizes == [len(rns)]
        # the next packet makes the loop sweep
        _, rid = _remote()
        net.req_read_packet(_ping_pkt(rid))
        net.req_table_op(lambda: sizes.append(len(net.nodes)))
        assert sizes[1] == 1  # only the pinging node, which is verifying
        assert _state_of(net, rid) is verifywait
    finally:
        net.close()
