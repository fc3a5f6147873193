"""The p2pnode command: two processes on 127.0.0.1 chat and stop cleanly; flag errors."""

from __future__ import annotations

import os
import queue
import signal
import threading

import pytest

from p2p import crypto
from p2p.cmd import p2pnode
from p2p.discover.node import parse_node, pubkey_id
from tests.helpers import P2PNodeProcess

WAIT = 20.0  # generous: two interpreters start and do an RLPx handshake

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_node(*args):
    """A p2pnode subprocess (no discovery) whose stdout lines arrive on a queue."""
    return P2PNodeProcess(*args, wait=WAIT, name="test.p2pnode")


def test_two_nodes_chat_and_stop():
    """alice listens, bob has her as a static node; greetings and stdin lines cross; both stop with 0."""
    a = start_node("--name", "alice", "--greet", "hello from alice")
    b = None
    try:
        a_url = a.expect(lambda l: l.startswith("enode://"), "enode URL")
        a_id = parse_node(a_url).id.hex()[:8]
        b = start_node("--name", "bob", "--greet", "hello from bob", "--static", a_url)
        b_url = b.expect(lambda l: l.startswith("enode://"), "enode URL")
        b_id = parse_node(b_url).id.hex()[:8]

        add = b.expect(lambda l: l.startswith("peer add"), "peer add on bob")
        assert add.split()[2:4] == [a_id, "alice"]
        assert add.split()[4].startswith("127.0.0.1:")
        add = a.expect(lambda l: l.startswith("peer add"), "peer add on alice")
        assert add.split()[2:4] == [b_id, "bob"]

        b.expect(lambda l: l == "chat %s: hello from alice" % a_id, "alice's greeting on bob")
        a.expect(lambda l: l == "chat %s: hello from bob" % b_id, "bob's greeting on alice")

        b.send("typed on bob")
        a.expect(lambda l: l == "chat %s: typed on bob" % b_id, "bob's stdin line on alice")
        a.send("typed on alice")
        b.expect(lambda l: l == "chat %s: typed on alice" % a_id, "alice's stdin line on bob")

        assert a.stop() == 0
        a.expect(lambda l: l == "peer drop %s client quitting" % b_id, "alice's drop line")
        b.expect(lambda l: l == "peer drop %s client quitting" % a_id, "bob told alice is quitting")
        assert b.stop(signal.SIGINT) == 0  # Ctrl-C stops it the same way
    finally:
        a.stop()
        if b is not None:
            b.stop()


@pytest.mark.parametrize("args", [
    ["--maxpeers", "x"],
    ["--verbosity", "9"],
    ["--addr", "nope"],
    ["--static", "enode://zz@127.0.0.1:1"],
    ["--nodekeyhex", "12"],
    ["--nodekey", "/nonexistent/key", "--nodekeyhex", "00" * 32],
    ["--netrestrict", "10.0.0.0/99"],
    ["--bogus"],
])
def test_bad_flags_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exc:
        rc = p2pnode.main(args)
        raise SystemExit(rc)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("p2pnode: error: ")
    assert err.count("\n") == 1


def test_chat_protocol_roundtrip():
    """chat_protocol over a message pipe: [text] in, on_message out."""
    from p2p.message import msg_pipe, send

    got = queue.Queue()
    proto = p2pnode.chat_protocol(lambda peer, text: got.put((peer, text)))
    assert (proto.name, proto.version, proto.length) == ("chat", 1, 1)
    rw1, rw2 = msg_pipe()
    res = queue.Queue()
    t = threading.Thread(target=lambda: res.put(_run(proto, "peer-x", rw2)), name="test.chat", daemon=True)
    t.start()
    send(rw1, 0, ["hi ☃".encode()])
    assert got.get(timeout=5) == ("peer-x", "hi ☃")
    send(rw1, 1, [b"bad code"])
    t.join(5)
    err = res.get(timeout=5)
    assert "invalid message code" in str(err)
    rw1.close()


def _run(proto, peer, rw):
    try:
        return proto.run(peer, rw)
    except Exception as err:
        return err


def test_build_config_from_flags(tmp_path):
    key = crypto.generate_key()
    keyfile = tmp_path / "key"
    crypto.save_ecdsa(str(keyfile), key)
    other = "enode://%s@127.0.0.1:30303" % pubkey_id(crypto.generate_key().public_key).hex()
    args = p2pnode._parser().parse_args([
        "--nodekey", str(keyfile), "--addr", "127.0.0.1:0", "--static", other, "--trusted", other,
        "--maxpeers", "3", "--nodial", "--datadir", str(tmp_path), "--netrestrict", "127.0.0.0/8",
        "--nat", "extip:127.0.0.1"])
    cfg = p2pnode.build_config(args)
    assert cfg.private_key.secret == key.secret
    assert cfg.max_peers == 3 and cfg.no_dial and cfg.listen_addr == "127.0.0.1:0"
    assert [n.tcp for n in cfg.static_nodes] == [30303] and len(cfg.trusted_nodes) == 1
    assert cfg.node_database == os.path.join(str(tmp_path), "nodes")
    assert cfg.net_restrict.contains("127.0.0.1") and not cfg.net_restrict.contains("10.0.0.1")
    assert str(cfg.nat.external_ip()) == "127.0.0.1"
