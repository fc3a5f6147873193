"""p2psim (our cmd/p2psim) and p2psim-server, driven as a user would."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys

from p2p import crypto
from p2p.cmd import p2psim
from p2p.discover.node import pubkey_id
from p2p.simulations.http import Client

from tests.simulations.test_http import _TestServer, _wait_conns_up


def _run(url, *args, stdin=None, monkeypatch=None):
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = p2psim.main(["--api", url, *args], out=out)
    return rc, out.getvalue()


def test_p2psim_commands(monkeypatch, capsys):
    s = _TestServer()
    try:
        url = s.url
        key = crypto.generate_key()
        assert _run(url, "node", "create", "--name", "node01", "--key", crypto.from_ecdsa(key).hex()) == (
            0, "Created node01\n")
        assert _run(url, "node", "create", "--name", "node02", "--services", "test") == (0, "Created node02\n")
        rc, text = _run(url, "node", "create")  # departure p2psim-name: the random config's name
        assert rc == 0 and text.startswith("Created node_")
        assert _run(url, "node", "start", "node01") == (0, "Started node01\n")
        assert _run(url, "node", "start", "node02") == (0, "Started node02\n")
        assert _run(url, "node", "connect", "node01", "node02") == (0, "Connected node01 to node02\n")
        _wait_conns_up(Client(url), 1)

        rc, text = _run(url, "show")
        assert rc == 0 and text.split() == ["NODES", "3", "CONNS", "1"]
        rc, text = _run(url, "node", "list")
        lines = text.splitlines()
        assert lines[0].split() == ["NAME", "PROTOCOLS", "ID"]
        assert lines[1].split()[0] == "node01" and lines[1].split()[2] == pubkey_id(key.public_key).hex()
        assert set(lines[1].split()[1].split(",")) == {"test", "dum", "prb"}
        rc, text = _run(url, "node", "show", "node01")
        assert rc == 0 and "ENODE" in text and "--- PROTOCOL INFO: test" in text
        rc, text = _run(url, "node", "rpc", "node01", "test_add", "5")
        assert rc == 1  # the argument is a string: the API wants a number, and says so
        rc, text = _run(url, "node", "rpc", "node01", "admin_nodeInfo")
        assert rc == 0 and json.loads(text)["name"] == ""  # the node's own p2p name
        rc, snap_text = _run(url, "snapshot")
        snap = json.loads(snap_text)
        assert len(snap["nodes"]) == 3 and len(snap["conns"]) == 1
        assert _run(url, "node", "disconnect", "node01", "node02") == (0, "Disconnected node01 from node02\n")
        assert _run(url, "node", "stop", "node02") == (0, "Stopped node02\n")

        rc, text = _run(url, "node", "start", "nope")
        assert rc == 1 and "404" in capsys.readouterr().err

        s2 = _TestServer()
        try:
            rc, _ = _run(s2.url, "load", stdin=snap_text, monkeypatch=monkeypatch)
            assert rc == 0
            assert [n.name for n in Client(s2.url).get_nodes()][:2] == ["node01", "node02"]
        finally:
            s2.close()
    finally:
        s.close()


def test_p2psim_version(capsys):
    try:
        p2psim.main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.startswith("p2psim (gethp2p ")


def test_p2psim_server_runs_and_stops():
    """python -m p2p.simulations --nodes 3: a ring of ping-pong nodes; SIGTERM ends it cleanly."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "p2p.simulations", "--addr", "127.0.0.1:0", "--nodes", "3",
                             "--verbosity", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "p2psim-server: sim adapter, services ping-pong, 3 nodes: http://127.0.0.1:" in line, (
            line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split(": ", 2)[2].split(" ")[0]
        client = Client(url)
        _wait_conns_up(client, 3)
        assert [n.name for n in client.get_nodes()] == ["node01", "node02", "node03"]
        assert all("ping-pong" in n.protocols for n in client.get_nodes())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert rc == 0


def test_p2psim_server_refuses_non_loopback():
    r = subprocess.run([sys.executable, "-m", "p2p.simulations", "--addr", "0.0.0.0:0", "--version"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("p2psim-server (gethp2p ")
    r = subprocess.run([sys.executable, "-m", "p2p.simulations", "--addr", "0.0.0.0:0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a loopback address" in r.stderr
