"""Test doubles for the nat tests: an in-memory Interface and a fake NAT-PMP router.

The fake UPnP gateway (``FakeIGD``) lives in test_natupnp.py beside its Go twin.
Every fake is a real server on 127.0.0.1 running in threads that ``close()`` ends.
"""

import queue
import select
import socket
import struct
import threading

from p2p.nat import Interface, NATError

WAIT = 5.0  # seconds a test waits for an expected event before failing


class RecordingInterface(Interface):
    """An Interface that records every call into ``calls`` (a queue).

    ``add_error`` / ``delete_error``: exceptions raised by those methods.
    """

    def __init__(self, add_error=None, delete_error=None, ip="203.0.113.9"):
        self.calls = queue.Queue()
        self.add_error = add_error
        self.delete_error = delete_error
        self.ip = ip

    def add_mapping(self, protocol, ext_port, int_port, name, lifetime):
        self.calls.put(("add", protocol, ext_port, int_port, name, lifetime))
        if self.add_error is not None:
            raise self.add_error

    def delete_mapping(self, protocol, ext_port, int_port):
        self.calls.put(("delete", protocol, ext_port, int_port))
        if self.delete_error is not None:
            raise self.delete_error

    def external_ip(self):
        return self.ip

    def __str__(self):
        return "Recording"

    def next_call(self, timeout=WAIT):
        return self.calls.get(timeout=timeout)


class _UDPServer:
    """A UDP socket on 127.0.0.1 served by one thread; ``close()`` wakes and joins it."""

    name = "fake-udp"

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self._wake_r, self._wake_w = socket.socketpair()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _loop(self):
        while True:
            r, _, _ = select.select([self.sock, self._wake_r], [], [])
            if self._wake_r in r:
                return
            try:
                data, addr = self.sock.recvfrom(65536)
            except OSError:
                return
            self.handle(data, addr)

    def handle(self, data, addr):
        raise NotImplementedError

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(WAIT)
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class SilentUDP(_UDPServer):
    """Receives and never answers: a gateway that is not there (no ICMP either)."""

    name = "fake-silent"

    def __init__(self):
        super().__init__()
        self.received = queue.Queue()

    def handle(self, data, addr):
        self.received.put(data)


class FakePMP(_UDPServer):
    """A NAT-PMP router on 127.0.0.1 (RFC 6886 server side).

    ``result_code`` is sent in every answer (0 = success). ``drop`` requests
    are ignored first (to exercise retransmission); ``garbage`` makes it send
    a malformed datagram before each real answer. Each map request is put into
    ``mappings`` as ``(protocol, internal_port, external_port, lifetime)``.
    """

    name = "fake-natpmp"

    def __init__(self, external_ip="198.51.100.7", result_code=0, drop=0, garbage=False):
        super().__init__()
        self.external_ip = socket.inet_aton(external_ip)
        self.result_code = result_code
        self.drop = drop
        self.garbage = garbage
        self.requests = queue.Queue()  # every datagram received
        self.mappings = queue.Queue()
        self.epoch = 1000

    @property
    def port(self):
        return self.addr[1]

    def handle(self, data, addr):
        self.requests.put(data)
        if self.drop > 0:
            self.drop -= 1
            return
        if self.garbage:
            self.sock.sendto(b"\x07\x07", addr)
            self.sock.sendto(b"\x00\x99\x00\x00" + bytes(12), addr)  # wrong opcode
        if len(data) < 2 or data[0] != 0:
            self.sock.sendto(struct.pack("!BBHI", 0, 128 + (data[1] if len(data) > 1 else 0), 1, self.epoch), addr)
            return
        op = data[1]
        self.epoch += 1
        if op == 0:
            self.sock.sendto(struct.pack("!BBHI", 0, 128, self.result_code, self.epoch) + self.external_ip, addr)
        elif op in (1, 2) and len(data) >= 12:
            _, _, _, iport, eport, life = struct.unpack("!BBHHHI", data[:12])
            self.mappings.put(("udp" if op == 1 else "tcp", iport, eport, life))
            mapped = eport if life else 0
            self.sock.sendto(struct.pack("!BBHIHHI", 0, 128 + op, self.result_code, self.epoch,
                                         iport, mapped, life), addr)
        else:
            self.sock.sendto(struct.pack("!BBHI", 0, 128 + op, 5, self.epoch), addr)

    def next_mapping(self, timeout=WAIT):
        return self.mappings.get(timeout=timeout)


def closed_udp_port():
    """A loopback UDP port with nothing listening (bound, then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


__all__ = ["RecordingInterface", "SilentUDP", "FakePMP", "closed_udp_port", "WAIT", "NATError"]
