"""Figures for p2p.crypto, p2p.crypto.ecies and p2p.event.Feed.

ECIES encrypt+decrypt round trips (the cost RLPx pays twice per handshake),
sign and recover, on each crypto backend; and Feed.send to many subscribers.
"""

import os
import queue
import time

from p2p import crypto
from p2p.crypto import ecies
from p2p.event import Feed

# How long each measurement runs (seconds); the pure-Python backend gets fewer ops.
TARGET_SECONDS = 0.5


def _rate(fn, min_ops=5):
    """Operations per second of fn(), run for about TARGET_SECONDS."""
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + TARGET_SECONDS
    while True:
        fn()
        n += 1
        now = time.perf_counter()
        if n >= min_ops and now >= deadline:
            return n / (now - t0)


def run(report):
    for name in crypto.available_backends():
        with crypto.use_backend(name):
            prv = ecies.generate_key()
            pub = prv.public_key
            # An RLPx EIP-8 auth message is about 300 bytes with padding.
            m = os.urandom(300)
            prefix = b"\x01\x9b"

            def round_trip():
                prv.decrypt(ecies.encrypt(pub, m, None, prefix), None, prefix)

            limit = 5000 if name == "coincurve" else None
            report.add("ecies", "encrypt+decrypt round trips (%s)" % name, _rate(round_trip), "ops/s",
                       limit=limit, limit_name="goal" if limit else None)

            key = crypto.generate_key()
            h = crypto.keccak256(b"bench")
            sig = crypto.sign(h, key)
            report.add("crypto", "sign (%s)" % name, _rate(lambda: crypto.sign(h, key)), "ops/s")
            report.add("crypto", "recover (%s)" % name, _rate(lambda: crypto.recover_node_id(h, sig)), "ops/s")
            other = crypto.generate_key().public_key
            report.add("crypto", "ecdh (%s)" % name, _rate(lambda: crypto.ecdh(key, other)), "ops/s")

    feed = Feed()
    queues = [queue.SimpleQueue() for _ in range(100)]
    subs = [feed.subscribe(q) for q in queues]

    def send():
        feed.send(1)

    rate = _rate(send)
    for s in subs:
        s.unsubscribe()
    report.add("event", "Feed.send to 100 subscribers", rate, "sends/s")
