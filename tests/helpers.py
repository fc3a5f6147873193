"""Small helpers shared by the network tests (loopback only, no sleeps)."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading

from p2p import crypto, rlpx
from p2p.discover.node import parse_node


def run_parallel(fn, items, timeout=60.0, name="test.parallel"):
    """Run ``fn(item)`` for every item on its own thread; re-raise the first failure.

    Fails if a thread is still running after ``timeout`` seconds.
    """
    errors = []

    def run(it):
        try:
            fn(it)
        except BaseException as e:  # re-raised below, on the test's thread
            errors.append(e)

    ths = [threading.Thread(target=run, args=(it,), name=name) for it in items]
    for th in ths:
        th.start()
    for th in ths:
        th.join(timeout)
    assert not any(th.is_alive() for th in ths), "%s: threads did not finish in %.0fs" % (name, timeout)
    if errors:
        raise errors[0]


def capture_auth(dest, timeout=5.0) -> bytes:
    """The bytes of a valid EIP-8 auth message for ``dest``, captured off a socket pair.

    The initiator never gets an ack: its handshake fails when the pair is shut down.
    """
    a, b = socket.socketpair()

    def initiator():
        try:
            rlpx.new_rlpx(a).do_enc_handshake(crypto.generate_key(), dest)
        except Exception:  # expected: nobody answers
            pass

    th = threading.Thread(target=initiator, name="test.initiator", daemon=True)
    th.start()
    try:
        b.settimeout(timeout)
        head = b.recv(2)
        size = int.from_bytes(head, "big")
        body = b""
        while len(body) < size:
            chunk = b.recv(size - len(body))
            assert chunk, "initiator closed before sending its auth"
            body += chunk
        b.shutdown(socket.SHUT_RDWR)
        th.join(timeout)
    finally:
        a.close()
        b.close()
    return head + body


class P2PNodeProcess:
    """A ``p2pnode`` subprocess on 127.0.0.1 (no discovery) for tests that need a live node.

    Its stdout lines arrive on a queue (``expect`` waits for one that matches) and its
    stderr lines are collected in ``errors``; ``/proc`` gives its CPU time and memory.
    """

    def __init__(self, *args, wait: float = 30.0, name: str = "test.p2pnode"):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.wait = wait
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "p2p.cmd.p2pnode", "--addr", "127.0.0.1:0", "--nodiscover",
             "--verbosity", "1"] + list(args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=root)
        self.lines: "queue.Queue" = queue.Queue()
        self.seen: list = []
        self.errors: list = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put),
                             name=name + ".stdout", daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors.append),
                             name=name + ".stderr", daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(f, put):
        for line in f:
            put(line.rstrip("\n"))
        put(None)

    def expect(self, pred, what: str) -> str:
        """Wait for a stdout line matching ``pred`` and return it."""
        while True:
            try:
                line = self.lines.get(timeout=self.wait)
            except queue.Empty:
                raise AssertionError("p2pnode: no %s within %.0f s; got %r" % (what, self.wait, self.seen)) from None
            if line is None:
                raise AssertionError("p2pnode ended before %s; got %r; stderr %r"
                                     % (what, self.seen, [e for e in self.errors if e]))
            self.seen.append(line)
            if pred(line):
                return line

    def enode(self) -> str:
        """Wait for the node's enode URL (the first line it prints); also kept parsed in ``node``."""
        url = self.expect(lambda line: line.startswith("enode://"), "enode URL")
        self.node = parse_node(url)
        return url

    def send(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def cpu_seconds(self) -> float:
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _status(self, field: str) -> int:
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no %s in /proc/%d/status" % (field, self.proc.pid))

    def rss(self) -> int:
        return self._status("VmRSS")

    def peak_rss(self) -> int:
        return self._status("VmHWM")

    def reset_peak(self) -> None:
        with open("/proc/%d/clear_refs" % self.proc.pid, "w") as f:
            f.write("5")  # sets VmHWM to the current VmRSS (Linux 4.0 and later)

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(self.wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for t in self._threads:
            t.join(self.wait)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        return rc


def load_lookup_testnet():
    """geth's pre-mined lookup testnet: (target ID hex, target hash hex, {log distance: [ID hex]})."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "lookup_testnet.json")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data["target"], data["target_sha"], {int(d): ids for d, ids in data["dists"].items()}
