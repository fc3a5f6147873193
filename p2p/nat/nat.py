"""Port mapping on the local Internet gateway (port of geth's p2p/nat/nat.go).

An :class:`Interface` maps a port of this machine to a port of the gateway's
Internet-facing address. Three mechanisms exist: :class:`ExtIP` (the user says
which address is ours and mapped the ports by hand), UPnP (``natupnp``) and
NAT-PMP (``natpmp``). :func:`parse` turns the ``--nat`` flag value into one of
them and :func:`map` keeps a mapping alive in its own thread.

Addresses are ``ipaddress.IPv4Address`` / ``IPv6Address`` objects (Go's
``net.IP``); durations are seconds (Go's ``time.Duration``).

Discovery of a gateway (``Any()``, ``UPnP()``, ``PMP()`` without an address)
sends nothing until the Interface is first used, as in geth: that first call
runs the discovery and the calls made meanwhile wait for its result.
"""

from __future__ import annotations

import ipaddress
import queue
import threading

from p2p.log import get_logger
from p2p.netutil.net import to_ip

__all__ = [
    "Interface", "NATError", "parse", "MAP_TIMEOUT", "MAP_UPDATE_INTERVAL",
    "ExtIP", "Any", "UPnP", "PMP", "AutoDisc", "start_autodisc", "interface_addrs", "parse_addr_listing",
]
# `map` is exported by the package (p2p.nat.map) but kept out of __all__ so
# that a star import never shadows the builtin.

log = get_logger("p2p.nat")


class NATError(Exception):
    """A port mapping operation failed (no gateway, refused mapping, bad reply...)."""


class Interface:
    """A mechanism that maps local ports to ports reachable from the Internet.

    ``protocol`` is ``"TCP"`` or ``"UDP"`` (any case). ``name`` is a display
    name that some mechanisms show in the gateway's UI. A mapping lapses on
    the gateway after ``lifetime`` seconds unless it is added again.
    Failures raise :class:`NATError` (or ``OSError`` for socket errors).
    """

    def add_mapping(self, protocol: str, ext_port: int, int_port: int, name: str, lifetime: float) -> None:
        raise NotImplementedError

    def delete_mapping(self, protocol: str, ext_port: int, int_port: int) -> None:
        raise NotImplementedError

    def external_ip(self):
        """The gateway's Internet-facing address (an ipaddress object)."""
        raise NotImplementedError

    def __str__(self) -> str:
        """Name of the mechanism, for logs."""
        raise NotImplementedError


def parse(spec: str, *, ssdp_addr=None, pmp_gateways=None, pmp_port=None, timeout=None):
    """Parse a NAT mechanism description (the ``--nat`` flag).

    Mechanism names are case-insensitive:

    - ``""``, ``"none"``, ``"off"``: ``None`` (no mapping)
    - ``"extip:77.12.33.4"`` (or ``ip:``): the machine is reachable on that address
    - ``"any"`` (``auto``, ``on``): whichever of UPnP and NAT-PMP is found first
    - ``"upnp"``: UPnP
    - ``"pmp"`` (``natpmp``, ``nat-pmp``): NAT-PMP, gateway auto-detected
    - ``"pmp:192.168.0.1"``: NAT-PMP with the given gateway

    Raises ``ValueError`` with geth's messages for anything else. The keyword
    arguments go to the discovery of ``Any``/``UPnP``/``PMP`` (see :func:`Any`);
    they exist so tests can point discovery at loopback fakes.
    """
    parts = spec.split(":", 1)
    mech = parts[0].lower()
    ip = None
    if len(parts) > 1:
        ip = to_ip(parts[1])
        if ip is None:
            raise ValueError("invalid IP address")
    if mech in ("", "none", "off"):
        return None
    if mech in ("any", "auto", "on"):
        return Any(ssdp_addr=ssdp_addr, pmp_gateways=pmp_gateways, pmp_port=pmp_port, timeout=timeout)
    if mech in ("extip", "ip"):
        if ip is None:
            raise ValueError("missing IP address")
        return ExtIP(ip)
    if mech == "upnp":
        return UPnP(ssdp_addr=ssdp_addr, search_timeout=timeout)
    if mech in ("pmp", "natpmp", "nat-pmp"):
        return PMP(ip, port=pmp_port, gateways=pmp_gateways, timeout=timeout)
    raise ValueError('unknown mechanism "%s"' % parts[0])


# Go: mapTimeout, mapUpdateInterval. Seconds.
MAP_TIMEOUT = 20 * 60
MAP_UPDATE_INTERVAL = 15 * 60


def map(m: Interface, c: threading.Event, protocol: str, ext_port: int, int_port: int, name: str,
        update_interval: float = MAP_UPDATE_INTERVAL, lifetime: float = MAP_TIMEOUT) -> None:
    """Add a port mapping on ``m`` and keep it alive until ``c`` is set.

    Meant to be the body of its own thread. The mapping is added with a
    ``lifetime`` (20 minutes) and added again every ``update_interval``
    (15 minutes); when ``c`` is set it is deleted and the function returns.
    Errors are logged, never raised.
    """
    mlog = log.new(proto=protocol, extport=ext_port, intport=int_port, interface=m)
    try:
        try:
            m.add_mapping(protocol, ext_port, int_port, name, lifetime)
        except Exception as err:  # any mechanism failure: log and keep trying
            mlog.debug("Couldn't add port mapping", err=err)
        else:
            mlog.info("Mapped network port")
        # The refresh timer is the wait timeout on the quit event.
        while not c.wait(update_interval):
            mlog.trace("Refreshing port mapping")
            try:
                m.add_mapping(protocol, ext_port, int_port, name, lifetime)
            except Exception as err:
                mlog.debug("Couldn't add port mapping", err=err)
    finally:
        mlog.debug("Deleting port mapping")
        try:
            m.delete_mapping(protocol, ext_port, int_port)
        except Exception as err:
            mlog.debug("Couldn't delete port mapping", err=err)


class ExtIP(Interface):
    """The machine is reachable on a known external address; ports were mapped by hand.

    The mapping methods succeed without doing anything. (Go has the
    constructor ``ExtIP`` and the type ``extIP``; here one class is both.)
    """

    __slots__ = ("ip",)

    def __init__(self, ip):
        if ip is None:
            raise ValueError("IP must not be None")
        parsed = to_ip(ip)
        if parsed is None:
            raise ValueError("invalid IP address %r" % (ip,))
        self.ip = parsed

    def external_ip(self):
        return self.ip

    def __str__(self):
        return "ExtIP(%s)" % self.ip

    __repr__ = __str__

    def add_mapping(self, protocol, ext_port, int_port, name, lifetime):
        return None

    def delete_mapping(self, protocol, ext_port, int_port):
        return None

    def __eq__(self, other):
        return isinstance(other, ExtIP) and other.ip == self.ip

    def __hash__(self):
        return hash(self.ip)


def Any(ssdp_addr=None, pmp_gateways=None, pmp_port=None, timeout=None):  # noqa: N802 - geth's exported constructor
    """A mapper using whichever of UPnP and NAT-PMP answers first on the LAN.

    The keyword arguments point discovery elsewhere (tests use loopback fakes):
    ``ssdp_addr`` is the SSDP multicast (host, port), ``pmp_gateways`` the
    candidate NAT-PMP gateways (default: :func:`natpmp.potential_gateways`),
    ``pmp_port`` their port, ``timeout`` scales the discovery timeouts.
    """
    from p2p.nat import natpmp, natupnp

    upnp_kw = _discover_kwargs(ssdp_addr=ssdp_addr, search_timeout=timeout)
    pmp_kw = _discover_kwargs(gateways=pmp_gateways, port=pmp_port, timeout=timeout)

    def doit():
        # Run both discoveries; the first one that finds something wins.
        found = queue.Queue(maxsize=2)
        threads = [
            threading.Thread(target=lambda: found.put(_safe(natupnp.discover_upnp, **upnp_kw)),
                             name="nat.Any.discoverUPnP", daemon=True),
            threading.Thread(target=lambda: found.put(_safe(natpmp.discover_pmp, **pmp_kw)),
                             name="nat.Any.discoverPMP", daemon=True),
        ]
        for t in threads:
            t.start()
        for _ in range(len(threads)):
            c = found.get()
            if c is not None:
                return c
        return None

    return start_autodisc("UPnP or NAT-PMP", doit)


def UPnP(ssdp_addr=None, search_timeout=None, soap_timeout=None):  # noqa: N802 - geth's exported constructor
    """A mapper using UPnP; the gateway is found with an SSDP search.

    ``ssdp_addr`` defaults to the SSDP multicast group 239.255.255.250:1900.
    """
    from p2p.nat import natupnp

    kw = _discover_kwargs(ssdp_addr=ssdp_addr, search_timeout=search_timeout, soap_timeout=soap_timeout)
    return start_autodisc("UPnP", lambda: natupnp.discover_upnp(**kw))


def PMP(gateway=None, port=None, gateways=None, timeout=None):  # noqa: N802 - geth's exported constructor
    """A mapper using NAT-PMP.

    With a ``gateway`` address that router is used directly; without one,
    the candidates (``gateways``, default :func:`natpmp.potential_gateways`)
    are probed and the first that answers is used. ``port`` is the NAT-PMP
    port (5351).
    """
    from p2p.nat import natpmp

    if gateway is not None:
        gw = to_ip(gateway)
        if gw is None:
            raise ValueError("invalid IP address")
        kw = _discover_kwargs(port=port, timeout=timeout)
        return natpmp.PMP(gw, natpmp.Client(gw, **kw))
    kw = _discover_kwargs(gateways=gateways, port=port, timeout=timeout)
    return start_autodisc("NAT-PMP", lambda: natpmp.discover_pmp(**kw))


def _discover_kwargs(**kw):
    return {k: v for k, v in kw.items() if v is not None}


def _safe(fn, **kw):
    """Run a discovery function; any unexpected error means "nothing found"."""
    try:
        return fn(**kw)
    except Exception as err:
        log.debug("NAT discovery failed", err=err)
        return None


def start_autodisc(what, doit):
    """An Interface that discovers its mechanism with ``doit`` when first used."""
    return AutoDisc(what, doit)


class AutoDisc(Interface):
    """A mechanism still to be discovered.

    Nothing is sent when it is made: the first Interface call runs discovery
    (``doit``) in the calling thread, as geth's ``once.Do`` in ``wait`` does; calls
    made meanwhile wait for that one to finish, however long it takes (each probe
    is bounded by its own timeouts). Then they act on the mechanism found, or
    raise :class:`NATError` if there is none.
    """

    def __init__(self, what, doit):
        self.what = what  # kind of mechanism being discovered, for errors and logs
        self.doit = doit
        self._once = threading.Lock()  # held by the caller that runs discovery
        self._discovered = False
        self.mu = threading.Lock()
        self.found = None

    def add_mapping(self, protocol, ext_port, int_port, name, lifetime):
        self.wait()
        return self.found.add_mapping(protocol, ext_port, int_port, name, lifetime)

    def delete_mapping(self, protocol, ext_port, int_port):
        self.wait()
        return self.found.delete_mapping(protocol, ext_port, int_port)

    def external_ip(self):
        self.wait()
        return self.found.external_ip()

    def __str__(self):
        with self.mu:
            if self.found is None:
                return self.what
            return str(self.found)

    __repr__ = __str__

    def wait(self):
        """Discover on the first call (later callers wait for it); raise NATError if nothing was found."""
        with self._once:
            if not self._discovered:
                try:
                    found = self.doit()
                except Exception as err:  # a probe that fails has found nothing
                    log.debug("NAT discovery failed", what=self.what, err=err)
                    found = None
                with self.mu:
                    self.found = found
                self._discovered = True
        if self.found is None:
            raise NATError("no %s router discovered" % self.what)


# ---------------------------------------------------------------------------
# Local interface addresses (Go's net.Interfaces + iface.Addrs), shared by
# natupnp.internal_address and natpmp.potential_gateways. Reading them sends
# nothing on the network.

_SIOCGIFCONF = 0x8912
_SIOCGIFNETMASK = 0x891B
_IFREQ_SIZE = 40  # sizeof(struct ifreq) on 64-bit Linux


def interface_addrs():
    """The host's interface addresses as ``ipaddress.IPv4Interface``/``IPv6Interface``
    (address with its network prefix), loopback included.

    Uses the Linux ioctls and ``/proc/net/if_inet6``; elsewhere falls back to
    parsing ``ip -o addr`` (or ``ifconfig``). Returns ``[]`` if nothing works.
    """
    addrs = []
    try:
        addrs.extend(_ipv4_ioctl_addrs())
        addrs.extend(_ipv6_proc_addrs())
    except (OSError, ImportError, ValueError):
        addrs = []
    if not addrs:
        addrs = _command_addrs()
    return addrs


def _ipv4_ioctl_addrs():
    import array
    import fcntl
    import socket
    import struct

    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        buf = array.array("B", bytes(_IFREQ_SIZE * 128))
        ptr, _ = buf.buffer_info()
        res = fcntl.ioctl(s.fileno(), _SIOCGIFCONF, struct.pack("iL", len(buf), ptr))
        n = struct.unpack("iL", res)[0]
        data = buf.tobytes()[:n]
        for off in range(0, n - _IFREQ_SIZE + 1, _IFREQ_SIZE):
            name = data[off:off + 16].split(b"\0", 1)[0]
            ip = ipaddress.IPv4Address(data[off + 20:off + 24])
            try:
                m = fcntl.ioctl(s.fileno(), _SIOCGIFNETMASK, struct.pack("256s", name))
                mask = ipaddress.IPv4Address(m[20:24])
            except OSError:
                mask = ipaddress.IPv4Address("255.255.255.255")
            out.append(ipaddress.IPv4Interface("%s/%s" % (ip, mask)))
    return out


def _ipv6_proc_addrs():
    out = []
    try:
        f = open("/proc/net/if_inet6")
    except OSError:
        return out
    with f:
        for line in f:
            fields = line.split()
            if len(fields) < 6 or len(fields[0]) != 32:
                continue
            ip = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            out.append(ipaddress.IPv6Interface("%s/%d" % (ip, int(fields[2], 16))))
    return out


def _command_addrs():
    import subprocess

    for cmd in (["ip", "-o", "addr", "show"], ["ifconfig", "-a"]):
        try:
            text = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        out = parse_addr_listing(text)
        if out:
            return out
    return []


def parse_addr_listing(text):
    """Parse the addresses out of ``ip -o addr`` or ``ifconfig`` output."""
    import re

    out = []
    # ip: "inet 192.168.1.5/24", "inet6 fe80::1/64"
    for m in re.finditer(r"\binet6?\s+([0-9a-fA-F:.]+)/(\d+)", text):
        try:
            out.append(ipaddress.ip_interface("%s/%s" % (m.group(1), m.group(2))))
        except ValueError:
            pass
    if out:
        return out
    # ifconfig (BSD/macOS): "inet 192.168.1.5 netmask 0xffffff00", "inet6 fe80::1%en0 prefixlen 64"
    for m in re.finditer(r"\binet\s+([0-9.]+)\s+netmask\s+(0x[0-9a-fA-F]+|[0-9.]+)", text):
        mask = m.group(2)
        if mask.startswith("0x"):
            mask = str(ipaddress.IPv4Address(int(mask, 16)))
        try:
            out.append(ipaddress.IPv4Interface("%s/%s" % (m.group(1), mask)))
        except ValueError:
            pass
    for m in re.finditer(r"\binet6\s+([0-9a-fA-F:]+)(?:%\S+)?\s+prefixlen\s+(\d+)", text):
        try:
            out.append(ipaddress.IPv6Interface("%s/%s" % (m.group(1), m.group(2))))
        except ValueError:
            pass
    return out
