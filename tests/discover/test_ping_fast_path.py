"""The one-pass ping decoder gives exactly what the general decoder gives (packet or error)."""

import random
import time

from p2p import crypto, rlpcodec
from p2p.discover import udp


def _decode(buf, start, general):
    fast = rlpcodec.ping_fast
    if general:
        rlpcodec.ping_fast = lambda *a: None
    try:
        p = udp._decode_body(udp.pingPacket, buf, start)
    except Exception as e:
        return ("error", type(e).__name__, str(e))
    finally:
        rlpcodec.ping_fast = fast
    return ("ok", p)


def _bodies():
    key = crypto.generate_key()
    out = []
    for ip, port, tcp in [("127.0.0.1", 30303, 30303), ("::1", 1, 0), ("10.0.0.1", 65535, 127)]:
        ep = udp.RpcEndpoint(udp._addr_ip((ip, 0)), port, tcp)
        for exp in (0, 1, 127, 128, int(time.time()) + 60, 2**64 - 1):
            for ver in (0, 4, 128):
                pkt, _ = udp.encode_packet(key, udp.pingPacket, udp.Ping(ver, ep, ep, exp))
                out.append(bytes(pkt[udp.headSize + 1:]))
            # With EIP-868's record seq after the expiration.
            for seq in (0, 1, 127, 128, 2**64 - 1):
                pkt, _ = udp.encode_packet(key, udp.pingPacket, udp.Ping(4, ep, ep, exp, [rlpcodec.encode_uint(seq)]))
                out.append(bytes(pkt[udp.headSize + 1:]))
    return out


def test_ping_fast_path_matches_general_decoder():
    rng = random.Random(11)
    taken = 0
    for body in _bodies():
        cases = [body, body + b"\x01", body + b"\xc0"]
        for _ in range(40):
            m = bytearray(body)
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                if op < 0.6:
                    m[rng.randrange(len(m))] = rng.randrange(256)
                elif op < 0.8 and len(m) > 1:
                    del m[rng.randrange(len(m))]
                else:
                    m.insert(rng.randrange(len(m) + 1), rng.randrange(256))
            cases.append(bytes(m))
        for c in cases:
            buf = bytes(udp.headSize + 1) + c
            want = _decode(buf, udp.headSize + 1, general=True)
            got = _decode(buf, udp.headSize + 1, general=False)
            assert got == want, c.hex()
            if want[0] == "ok":
                taken += rlpcodec.ping_fast(buf, udp.headSize + 1, len(buf)) is not None
    assert taken > 50  # the usual shapes do take the fast path
