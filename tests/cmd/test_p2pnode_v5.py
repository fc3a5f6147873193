"""p2pnode --v5disc --bootnodesv5 URLS --topic NAME: flags, and a node running topic discovery.

Finding all the nodes of a topic can take a minute (a registration waits for its
ticket, and geth's wait periods start at a minute): the run that checks the
``topic found`` lines is ``soak/soak_v5_topic.py`` (``make soak``); here the flags,
the v5 listener and a clean stop are checked.
"""

import queue
import re
import signal
import threading

import pytest

from p2p import crypto
from p2p.cmd import p2pnode
from p2p.discover.udp import UDPConn
from p2p.discv5 import node as v5node
from p2p.discv5 import udp as v5udp
from p2p.discv5.nodeevent_string import pongPacket

from tests.cmd.test_p2pnode import WAIT, start_node


def _v5_url():
    key = crypto.generate_key()
    return "enode://%s@127.0.0.1:30301" % v5node.pubkey_id(key).hex()


def test_build_config_v5_flags():
    url = _v5_url()
    args = p2pnode._parser().parse_args(["--v5disc", "--bootnodesv5", url + "," + url, "--topic", "chat"])
    cfg = p2pnode.build_config(args)
    assert cfg.discovery_v5 and not cfg.no_discovery
    assert [type(n) for n in cfg.bootstrap_nodes_v5] == [v5node.Node, v5node.Node]
    assert str(cfg.bootstrap_nodes_v5[0]) == url
    assert not p2pnode.build_config(p2pnode._parser().parse_args([])).discovery_v5


@pytest.mark.parametrize("args", [
    ["--topic", "chat"],
    ["--bootnodesv5", "enode://%s@127.0.0.1:1" % ("00" * 64)],
    ["--v5disc", "--bootnodesv5", "enode://bad"],
])
def test_bad_v5_flags_exit_2(args, capsys):
    assert p2pnode.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2pnode: error: ") and err.count("\n") == 1


class _Recorder:
    def __init__(self, self_node):
        self.tab = type("Tab", (), {"self": self_node})()
        self.got = queue.Queue()

    def req_read_packet(self, pkt):
        self.got.put(pkt)


def test_v5disc_topic_node_answers_v5_and_stops(crypto_backend):
    # v5 alone (the helper passes --nodiscover), registering and searching a topic.
    node = start_node("--v5disc", "--topic", "chat")
    try:
        url = node.expect(lambda l: l.startswith("enode://"), "node URL")
        m = re.match(r"enode://([0-9a-f]{128})@127\.0\.0\.1:(\d+)", url)
        assert m, url
        target = v5node.new_node(v5node.hex_id(m.group(1)), "127.0.0.1", int(m.group(2)), int(m.group(2)))
        key = crypto.generate_key()
        conn = UDPConn.listen("127.0.0.1", 0)
        t = v5udp._listen_udp(key, conn, conn.local_addr())
        t.net = _Recorder(v5node.new_node(v5node.pubkey_id(key), "127.0.0.1", conn.local_addr()[1], 1))
        th = threading.Thread(target=t.read_loop, name="discv5.udp.readLoop", daemon=True)
        t._read_thread = th
        th.start()
        try:
            h = t.send_ping(target, target.addr(), [])
            while True:
                pkt = t.net.got.get(timeout=WAIT)
                if pkt.ev == pongPacket:
                    break
            assert pkt.remote_id == target.id and pkt.data.reply_tok == h
        finally:
            t.close()
    finally:
        rc = node.stop(signal.SIGTERM)
    assert rc == 0
