"""NAT-PMP port mapping (port of geth's p2p/nat/natpmp.go).

geth uses the ``go-nat-pmp`` library; here the client is written from RFC 6886
with plain UDP sockets: :class:`Client` sends the external-address request
(opcode 0) and the UDP/TCP map requests (opcodes 1/2, lifetime 0 unmaps),
retransmitting from 250 ms with doubling waits as the RFC asks. The gateway
address, its port (5351) and the timeouts are parameters, so tests talk to a
fake router on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import struct
import threading
import time

from p2p.log import get_logger
from p2p.nat.nat import Interface, NATError, interface_addrs
from p2p.netutil.net import to_ip

__all__ = [
    "NATPMP_PORT", "PMPError", "Client", "ExternalAddressResponse", "PortMappingResponse",
    "PMP", "discover_pmp", "potential_gateways", "RESULT_CODES", "DISCOVER_TIMEOUT",
]

log = get_logger("p2p.nat")

NATPMP_PORT = 5351  # the gateway's NAT-PMP port
NATPMP_VERSION = 0

OP_EXTERNAL_ADDRESS = 0
OP_MAP_UDP = 1
OP_MAP_TCP = 2
_OP_RESPONSE = 128  # responses carry the request opcode + 128

INITIAL_TIMEOUT = 0.25  # first retransmission wait (RFC 6886 3.1)
TRIES = 9  # sends before giving up; the wait doubles after each

# How long discovery waits for any candidate gateway to answer (seconds).
DISCOVER_TIMEOUT = 1.0

RESULT_CODES = {
    0: "success",
    1: "unsupported version",
    2: "not authorized or refused",
    3: "network failure",
    4: "out of resources",
    5: "unsupported opcode",
}


class PMPError(NATError):
    """The gateway answered a NAT-PMP request with a non-zero result code."""

    def __init__(self, gateway, opcode, code):
        self.gateway = gateway
        self.opcode = opcode
        self.code = code
        super().__init__("NAT-PMP gateway %s refused opcode %d: result code %d (%s)" % (
            gateway, opcode, code, RESULT_CODES.get(code, "unknown result code")))


class ExternalAddressResponse:
    __slots__ = ("seconds_since_start_of_epoch", "external_ip_address")

    def __init__(self, seconds, ip):
        self.seconds_since_start_of_epoch = seconds
        self.external_ip_address = ip


class PortMappingResponse:
    __slots__ = ("seconds_since_start_of_epoch", "internal_port", "mapped_external_port",
                 "port_mapping_lifetime_in_seconds")

    def __init__(self, seconds, internal_port, mapped_external_port, lifetime):
        self.seconds_since_start_of_epoch = seconds
        self.internal_port = internal_port
        self.mapped_external_port = mapped_external_port
        self.port_mapping_lifetime_in_seconds = lifetime


class Client:
    """A NAT-PMP client for one gateway (RFC 6886).

    A request is sent up to ``tries`` times, waiting ``initial_timeout``
    seconds for the answer and doubling the wait after each send. ``timeout``
    (seconds, optional) bounds the whole exchange. Requests are serialized:
    the RFC wants one outstanding request per client.
    """

    def __init__(self, gateway, port=NATPMP_PORT, timeout=None, initial_timeout=INITIAL_TIMEOUT, tries=TRIES):
        gw = to_ip(gateway)
        if gw is None:
            raise ValueError("invalid gateway IP address %r" % (gateway,))
        self.gateway = gw
        self.port = port
        self.timeout = timeout
        self.initial_timeout = initial_timeout
        self.tries = tries
        self._lock = threading.Lock()

    def get_external_address(self) -> ExternalAddressResponse:
        data = self._rpc(struct.pack("!BB", NATPMP_VERSION, OP_EXTERNAL_ADDRESS), OP_EXTERNAL_ADDRESS, 12)
        seconds = struct.unpack_from("!I", data, 4)[0]
        return ExternalAddressResponse(seconds, ipaddress.IPv4Address(data[8:12]))

    def add_port_mapping(self, protocol: str, internal_port: int, requested_external_port: int,
                         lifetime: int) -> PortMappingResponse:
        """Map (or with lifetime 0 and external port 0, unmap) ``internal_port``."""
        proto = protocol.lower()
        if proto == "udp":
            op = OP_MAP_UDP
        elif proto == "tcp":
            op = OP_MAP_TCP
        else:
            raise ValueError("unknown protocol %r (want udp or tcp)" % (protocol,))
        for what, v, lim in (("internal port", internal_port, 0xFFFF),
                             ("external port", requested_external_port, 0xFFFF),
                             ("lifetime", lifetime, 0xFFFFFFFF)):
            if not 0 <= v <= lim:
                raise ValueError("%s %d out of range" % (what, v))
        msg = struct.pack("!BBHHHI", NATPMP_VERSION, op, 0, internal_port, requested_external_port, lifetime)
        data = self._rpc(msg, op, 16, internal_port)
        seconds, iport, eport, life = struct.unpack_from("!IHHI", data, 4)
        return PortMappingResponse(seconds, iport, eport, life)

    def _rpc(self, msg: bytes, op: int, size: int, internal_port=None) -> bytes:
        """Send ``msg`` with retransmissions and return the first matching response."""
        family = socket.AF_INET6 if self.gateway.version == 6 else socket.AF_INET
        with self._lock, socket.socket(family, socket.SOCK_DGRAM) as sock:
            # A connected socket only receives datagrams from the gateway.
            sock.connect((str(self.gateway), self.port))
            start = time.monotonic()
            deadline = None if self.timeout is None else start + self.timeout
            wait = self.initial_timeout
            for _ in range(self.tries):
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                sock.send(msg)
                send_deadline = now + wait
                if deadline is not None:
                    send_deadline = min(send_deadline, deadline)
                data = self._read_response(sock, send_deadline, op, size, internal_port)
                if data is not None:
                    return data
                wait *= 2
        raise NATError("NAT-PMP gateway %s:%d did not answer (opcode %d)" % (self.gateway, self.port, op))

    def _read_response(self, sock, deadline, op, size, internal_port):
        """Wait until ``deadline`` for a valid response; None on timeout."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            try:
                data = sock.recv(64)
            except socket.timeout:
                return None
            except ConnectionRefusedError:
                # ICMP port unreachable: nothing listens on the NAT-PMP port.
                raise NATError("NAT-PMP gateway %s:%d refused the connection" % (self.gateway, self.port))
            if len(data) < 4 or data[0] != NATPMP_VERSION or data[1] != op + _OP_RESPONSE:
                log.trace("Ignoring bad NAT-PMP response", gateway=self.gateway, len=len(data))
                continue
            code = struct.unpack_from("!H", data, 2)[0]
            if code != 0:
                raise PMPError(self.gateway, op, code)
            if len(data) < size:
                log.trace("Ignoring short NAT-PMP response", gateway=self.gateway, len=len(data))
                continue
            if internal_port is not None and struct.unpack_from("!H", data, 8)[0] != internal_port:
                continue  # an answer to some other mapping request
            return data


class PMP(Interface):
    """NAT-PMP behind the common Interface (geth's ``pmp``; the :func:`nat.PMP` function makes one)."""

    def __init__(self, gw, c: Client):
        self.gw = gw
        self.c = c

    def __str__(self):
        return "NAT-PMP(%s)" % self.gw

    __repr__ = __str__

    def external_ip(self):
        return self.c.get_external_address().external_ip_address

    def add_mapping(self, protocol, ext_port, int_port, name, lifetime):
        if lifetime <= 0:
            raise NATError("lifetime must not be <= 0")
        # The client takes the internal port first, the reverse of add_mapping.
        res = self.c.add_port_mapping(protocol.lower(), int_port, ext_port, int(lifetime))
        if res.mapped_external_port != ext_port:
            log.debug("NAT-PMP gateway mapped a different port", gateway=self.gw,
                      want=ext_port, got=res.mapped_external_port)

    def delete_mapping(self, protocol, ext_port, int_port):
        # Unmapping is a map request for the internal port with external
        # port 0 and lifetime 0.
        self.c.add_port_mapping(protocol.lower(), int_port, 0, 0)


def discover_pmp(gateways=None, port=NATPMP_PORT, timeout=DISCOVER_TIMEOUT, **client_kw):
    """Ask every candidate gateway for its external address; return a
    :class:`PMP` for the first that answers within ``timeout`` seconds, or None.

    ``gateways`` defaults to :func:`potential_gateways`. ``client_kw``
    (``timeout``, ``initial_timeout``, ``tries``) configure the kept client.
    """
    gws = potential_gateways() if gateways is None else [to_ip(g) for g in gateways]
    gws = [g for g in gws if g is not None]
    if not gws:
        return None
    found = queue.Queue(maxsize=len(gws))

    def probe(gw):
        # Each probe gives up by the discovery deadline, so its thread ends soon.
        c = Client(gw, port, timeout=timeout)
        try:
            c.get_external_address()
        except Exception as err:  # whatever the reason, this one is no gateway
            log.trace("NAT-PMP probe failed", gateway=gw, err=err)
            found.put(None)
        else:
            found.put(gw)

    for gw in gws:
        threading.Thread(target=probe, args=(gw,), name="nat.discoverPMP", daemon=True).start()
    deadline = time.monotonic() + timeout
    for _ in gws:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            gw = found.get(timeout=remaining)
        except queue.Empty:
            return None
        if gw is not None:
            return PMP(gw, Client(gw, port, **client_kw))
    return None


# Private LAN ranges (Go: lan10, lan176, lan192).
lan10 = ipaddress.IPv4Network("10.0.0.0/8")
lan176 = ipaddress.IPv4Network("172.16.0.0/12")
lan192 = ipaddress.IPv4Network("192.168.0.0/16")


def potential_gateways(addrs=None):
    """Guess the LAN routers: x.x.x.1 of the network of each private IPv4 interface address.

    ``addrs`` (``ipaddress`` interface objects) defaults to the host's
    interfaces (:func:`nat.interface_addrs`).
    """
    if addrs is None:
        addrs = interface_addrs()
    gws = []
    for a in addrs:
        if a.version != 4:
            continue
        if a.ip in lan10 or a.ip in lan176 or a.ip in lan192:
            net = bytearray(a.network.network_address.packed)
            net[3] |= 0x01
            gw = ipaddress.IPv4Address(bytes(net))
            if gw not in gws:
                gws.append(gw)
    return gws
