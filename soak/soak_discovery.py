"""Soak: a long discovery run on 127.0.0.1 with lookups in a loop and node churn.

``--nodes`` discovery nodes bootstrap from one bootnode; then for ``--seconds``
worker threads run lookups of random targets from random nodes, and every
``--churn-every`` lookups one node (never the bootnode) is closed and a fresh
one joins, so the node count stays the same. Threads (long-lived ones: the
per-node loops; timer-driven helper threads are not counted), open fds and RSS
are recorded after the bootstrap and again after the loop; they must be back
(threads and fds exactly, RSS within ``--rss-tolerance`` MiB). After every node
is closed, threads and fds must equal what they were before the first node.

    python -m soak.soak_discovery --nodes 24 --seconds 300
"""

import argparse
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Soak runs stay on loopback: the clock check that discovery starts after many
# timeouts asks 127.0.0.1 instead of pool.ntp.org (read when p2p.discover.ntp loads).
os.environ.setdefault("GETHP2P_NTP_POOL", "127.0.0.1")

from p2p import crypto  # noqa: E402
from p2p.discover import udp as udpmod  # noqa: E402

from soak._resources import compare, fmt, snapshot, wait_threads  # noqa: E402


def start_node(bootnodes=()):
    conn = udpmod.UDPConn.listen("127.0.0.1", 0)
    return udpmod.listen_udp(conn, udpmod.Config(private_key=crypto.generate_key(), bootnodes=list(bootnodes)))


def close_all(tabs):
    ths = [threading.Thread(target=t.close, name="soak.close") for t in tabs]
    for th in ths:
        th.start()
    for th in ths:
        th.join(30)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=3, help="threads running lookups (default 3)")
    ap.add_argument("--churn-every", type=int, default=20, help="replace a node every N lookups (0: never)")
    ap.add_argument("--rss-tolerance", type=float, default=24.0, help="allowed RSS growth in MiB (default 24)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    rnd = random.Random(args.seed)
    before = snapshot()
    t0 = time.monotonic()
    boot = start_node()
    boot.init_done.wait(30)
    nodes = [boot] + [start_node([boot.self()]) for _ in range(args.nodes - 1)]
    for t in nodes:
        if not t.init_done.wait(60):
            print("FAIL: a node did not finish its first refresh")
            close_all(nodes)
            return 1
    print("bootstrap: %d nodes in %.1f s" % (len(nodes), time.monotonic() - t0))
    start = snapshot()

    mu = threading.Lock()
    stats = {"lookups": 0, "found": 0, "churned": 0, "errors": 0}
    stop_at = time.monotonic() + args.seconds

    def worker(seed):
        r = random.Random(seed)
        while time.monotonic() < stop_at:
            with mu:
                live = list(nodes)
                churn = args.churn_every and stats["lookups"] and stats["lookups"] % args.churn_every == 0
                if churn:
                    victim = r.choice(live[1:])
                    nodes.remove(victim)
                stats["lookups"] += 1
            if churn:
                victim.close()
                fresh = start_node([boot.self()])
                fresh.init_done.wait(60)
                with mu:
                    nodes.append(fresh)
                    stats["churned"] += 1
                continue
            searcher = r.choice(live)
            target = r.choice(live)
            try:
                res = searcher.lookup(target.self().id)
            except Exception as e:  # a closed node (churned meanwhile) may refuse
                with mu:
                    stats["errors"] += 1
                print("lookup error:", repr(e))
                continue
            if any(n.id == target.self().id for n in res):
                with mu:
                    stats["found"] += 1

    ths = [threading.Thread(target=worker, args=(rnd.random(),), name="soak.worker") for _ in range(args.workers)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    elapsed = time.monotonic() - (stop_at - args.seconds)
    print("loop: %.0f s, %d lookups (%d found their target), %d nodes replaced, %d errors" % (
        elapsed, stats["lookups"], stats["found"], stats["churned"], stats["errors"]))
    wait_threads(start["threads"])
    end = snapshot()
    ok = compare("discovery running", start, end, args.rss_tolerance)
    close_all(nodes)
    wait_threads(before["threads"])
    after = snapshot()
    closed_ok = after["threads"] == before["threads"] and after["fds"] == before["fds"]
    print("after close: %s (before start: %s) -> %s" % (fmt(after), fmt(before), "OK" if closed_ok else "FAIL"))
    print("total %.1f s" % (time.monotonic() - t0))
    return 0 if ok and closed_ok else 1


if __name__ == "__main__":
    sys.exit(main())
