"""Soak: topic discovery (discv5) between p2pnode processes on 127.0.0.1.

One ``bootnode --v5`` and ``--nodes`` ``p2pnode --v5disc --topic chat`` processes
(v5 only) bootstrapping from it; waits until every node has printed a
``topic found`` line for at least ``--want`` of the others (all of them by default),
or ``--timeout`` seconds. Prints, per node, the seconds until its first and its
last wanted ``topic found`` line; then stops every process with SIGTERM and checks
that they exit 0. Exit status 0 if every node found what it should.

A registration waits for its ticket (geth's wait periods start at a minute), so
finding every node can take a minute or more; the first lines come sooner (6 nodes
here: first after about 5 s, all after 69 s).

    python -m soak.soak_v5_topic --nodes 4 --timeout 300
"""

import argparse
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Proc:
    """A subprocess whose stdout lines arrive, time-stamped, on a shared queue."""

    def __init__(self, name, args, events):
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("GETHP2P_NTP_POOL", "127.0.0.1")
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-m"] + args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env, cwd=ROOT)
        self.first = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(events,), name="soak.v5topic.stdout",
                                       daemon=True)
        self.reader.start()

    def _read(self, events):
        first = True
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if first:
                self.first.put(line)
                first = False
            events.put((time.monotonic(), self.name, line))
        if first:
            self.first.put(None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "killed"
        self.reader.join(10)
        return rc


def _rss_mib(pid):
    """Resident memory of a process in MiB (Linux /proc), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--want", type=int, default=0, help="others each node must find (default: all)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--topic", default="chat")
    args = ap.parse_args(argv)
    want = args.want or args.nodes - 1
    events = queue.Queue()
    procs = []
    try:
        boot = Proc("boot", ["p2p.cmd.bootnode", "--addr", "127.0.0.1:0", "--v5", "--nodekeyhex",
                             os.urandom(32).hex()], events)
        procs.append(boot)
        url = boot.first.get(timeout=30)
        if not url:
            print("bootnode did not start")
            return 1
        start = time.monotonic()
        ids = {}
        for i in range(args.nodes):
            p = Proc("node%d" % i, ["p2p.cmd.p2pnode", "--addr", "127.0.0.1:0", "--nodiscover",
                                   "--v5disc", "--bootnodesv5", url, "--topic", args.topic,
                                   "--verbosity", "1"], events)
            procs.append(p)
        for p in procs[1:]:
            line = p.first.get(timeout=30)
            m = line and re.match(r"enode://([0-9a-f]{8})", line)
            if not m:
                print("%s did not start: %r" % (p.name, line))
                return 1
            ids[p.name] = m.group(1)
        found = {p.name: {} for p in procs[1:]}
        deadline = start + args.timeout
        while any(len(f) < want for f in found.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                t, name, line = events.get(timeout=left)
            except queue.Empty:
                break
            m = re.match(r"topic found ([0-9a-f]{8}) ", line)
            if m and name in found and m.group(1) != ids[name]:
                found[name].setdefault(m.group(1), t - start)
        ok = True
        for name, f in sorted(found.items()):
            times = sorted(f.values())
            good = len(f) >= want
            ok &= good
            print("%s: found %d/%d%s" % (name, len(f), want, (" first %.1fs, last wanted %.1fs" % (
                times[0], times[min(want, len(times)) - 1])) if times else ""))
        rss = [_rss_mib(p.proc.pid) for p in procs[1:]]
        rss = [r for r in rss if r is not None]
        if rss:
            print("RSS per p2pnode process: min %.1f MiB, max %.1f MiB (interpreter included)" % (min(rss), max(rss)))
        print("%s: %d nodes, topic %r, %.1fs" % ("ok" if ok else "FAILED", args.nodes, args.topic,
                                                 time.monotonic() - start))
        return 0 if ok else 1
    finally:
        codes = [(p.name, p.stop()) for p in procs]
        bad = [(n, c) for n, c in codes if c != 0]
        if bad:
            print("processes that did not exit 0:", bad)


if __name__ == "__main__":
    sys.exit(main())
