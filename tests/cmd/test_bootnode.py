"""Tests for the bootnode command (p2p/cmd/bootnode.py).

Error paths run in-process through ``main(argv)``; serving runs the command as a
subprocess on 127.0.0.1 and stops it with a signal.
"""

import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys

import pytest

from p2p import crypto
from p2p.cmd import bootnode
from p2p.discover.node import parse_node, pubkey_id

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYHEX = "49a7b37aa6f6645917e7b807e9d1c00d4fa71f18343b0d4122a4d2df64dd6fee"
KEY = crypto.hex_to_ecdsa(KEYHEX)
KEYID = pubkey_id(KEY.public_key).hex()
WAIT = 20.0  # generous upper bound for a subprocess to start or stop; never reached normally


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bootnode:
    """A bootnode subprocess whose first stdout line is its enode URL."""

    def __init__(self, *args):
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen([sys.executable, "-m", "p2p.cmd.bootnode", *args],
                                     cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def first_line(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT)
        assert ready, "bootnode printed nothing"
        return self.proc.stdout.readline().decode().rstrip("\n")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("bootnode did not exit on %s" % sig)
        return self.proc.returncode, out.decode(), err.decode()


@pytest.fixture
def run_bootnode():
    procs = []

    def start(*args):
        b = Bootnode(*args)
        procs.append(b)
        return b

    yield start
    for b in procs:
        if b.proc.poll() is None:
            b.proc.kill()
            b.proc.communicate()


@pytest.fixture(autouse=True)
def restore_p2p_logging():
    """main() configures the "p2p" logger (as a CLI does); undo it for the other tests."""
    lg = logging.getLogger("p2p")
    saved = (lg.level, list(lg.handlers), lg.propagate)
    yield
    lg.setLevel(saved[0])
    lg.handlers[:] = saved[1]
    lg.propagate = saved[2]


# ---------------------------------------------------------------------------
# In-process: keys and flag errors


def test_writeaddress_nodekeyhex(capsys):
    assert bootnode.main(["--nodekeyhex", KEYHEX, "--writeaddress"]) == 0
    out = capsys.readouterr().out
    assert out == KEYID + "\n"


def test_writeaddress_nodekey_file(tmp_path, capsys):
    path = str(tmp_path / "node.key")
    crypto.save_ecdsa(path, KEY)
    assert bootnode.main(["-nodekey", path, "-writeaddress"]) == 0  # Go-style single dash
    assert capsys.readouterr().out == KEYID + "\n"


def test_genkey(tmp_path, capsys):
    path = str(tmp_path / "gen.key")
    assert bootnode.main(["--genkey", path]) == 0
    assert capsys.readouterr().out == ""
    with open(path) as f:
        text = f.read()
    assert re.fullmatch(r"[0-9a-f]{64}", text)
    key = crypto.load_ecdsa(path)
    # --genkey with --writeaddress prints the new key's ID
    path2 = str(tmp_path / "gen2.key")
    assert bootnode.main(["--genkey", path2, "--writeaddress"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == pubkey_id(crypto.load_ecdsa(path2).public_key).hex()
    assert out != pubkey_id(key.public_key).hex()


@pytest.mark.parametrize("argv,msg", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    ([], "Use -nodekey or -nodekeyhex to specify a private key"),
    (["--nodekey", "x", "--nodekeyhex", KEYHEX], "Options -nodekey and -nodekeyhex are mutually exclusive"),
    (["--nodekey", "/nonexistent/node.key"], "-nodekey: "),
    (["--nodekeyhex", "zz"], "-nodekeyhex: "),
    (["--nodekeyhex", KEYHEX, "--nat", "bogus"], '-nat: unknown mechanism "bogus"'),
    (["--nodekeyhex", KEYHEX, "--nat", "extip:notanip"], "-nat: invalid IP address"),
    (["--nodekeyhex", KEYHEX, "--netrestrict", "10.0.0.0/99"], "-netrestrict: invalid CIDR address: 10.0.0.0/99"),
    (["--nodekeyhex", KEYHEX, "--verbosity", "9"], "verbosity"),
    (["--nodekeyhex", KEYHEX, "--addr", "127.0.0.1"], "-addr: address 127.0.0.1: missing port in address"),
    (["--nodekeyhex", KEYHEX, "--addr", "127.0.0.1:99999"], "-addr: invalid port"),
])
def test_bad_flags_exit_2(argv, msg, capsys):
    assert bootnode.main(argv) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.splitlines()
    assert len(lines) == 1, cap.err
    assert msg in lines[0]


def test_unreadable_key_file(tmp_path, capsys):
    path = tmp_path / "short.key"
    path.write_text("abcd")
    assert bootnode.main(["--nodekey", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Fatal: -nodekey: ") and err.count("\n") == 1


def test_writeaddress_enr_prints_signed_record(crypto_backend, capsys):
    """--writeaddress --enr prints the record (EIP-778 text form) signed with the node key."""
    from p2p import enr

    assert bootnode.main(["--nodekeyhex", KEYHEX, "--writeaddress", "--enr", "--addr", "127.0.0.1:30301"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("enr:")
    r = enr.parse_text(line)
    assert r.node_addr() == crypto.keccak256(bytes.fromhex(KEYID))
    assert r.load(enr.IP).address().compressed == "127.0.0.1"
    assert r.load(enr.UDP) == 30301 and r.load(enr.TCP) == 30301
    assert r.seq() == 1


# ---------------------------------------------------------------------------
# Subprocess: serving


def test_serve_prints_enode_then_exits_on_sigterm(run_bootnode):
    b = run_bootnode("--nodekeyhex", KEYHEX, "--addr", "127.0.0.1:0", "--verbosity", "4",
                     "--vmodule", "p2p/*=5")
    line = b.first_line()
    m = re.fullmatch(r"enode://([0-9a-f]{128})@127\.0\.0\.1:(\d+)", line)
    assert m, line
    assert m.group(1) == KEYID
    assert int(m.group(2)) > 0
    n = parse_node(line)
    assert n.udp == n.tcp == int(m.group(2))
    # it is really listening there: binding the same port fails
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(OSError):
            s.bind(("127.0.0.1", n.udp))
    code, out, err = b.stop(signal.SIGTERM)
    assert code == 0, err
    assert out == ""


def test_serve_extip_and_sigint(run_bootnode):
    port = _free_udp_port()
    b = run_bootnode("--nodekeyhex", KEYHEX, "--addr", "127.0.0.1:%d" % port,
                     "--nat", "extip:203.0.113.7", "--netrestrict", "127.0.0.0/8")
    assert b.first_line() == "enode://%s@203.0.113.7:%d" % (KEYID, port)
    code, _, err = b.stop(signal.SIGINT)
    assert code == 0, err


def test_serve_prints_and_logs_record(run_bootnode):
    """When serving, --enr prints the running node's record after its URL, and it is logged."""
    from p2p import enr

    b = run_bootnode("--nodekeyhex", KEYHEX, "--addr", "127.0.0.1:0", "--enr")
    n = parse_node(b.first_line())
    r = enr.parse_text(b.proc.stdout.readline().decode().strip())  # already buffered with the first
    assert r.node_addr() == crypto.keccak256(n.id)
    assert r.load(enr.UDP) == n.udp and r.load(enr.IP).address().compressed == "127.0.0.1"
    code, _, err = b.stop()
    assert code == 0, err
    assert "Node record" in err and enr.text(r) in err


def test_serve_answers_ping(run_bootnode):
    udp = pytest.importorskip("p2p.discover.udp")
    b = run_bootnode("--nodekeyhex", KEYHEX, "--addr", "127.0.0.1:0")
    boot = parse_node(b.first_line())
    tab = udp.listen_udp(udp.UDPConn.listen("127.0.0.1", 0),
                         udp.Config(private_key=crypto.generate_key()))
    try:
        # A pong must come within geth's 500 ms reply timeout; on a loaded machine a
        # cold subprocess can miss that, so allow a few pings (one answered is the test).
        errs = []
        for _ in range(5):
            err = tab.net.ping(boot.id, boot.addr())
            if err is None:
                break
            errs.append(err)
        assert err is None, errs
    finally:
        tab.close()
    code, _, err = b.stop()
    assert code == 0, err
