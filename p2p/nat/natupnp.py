"""UPnP Internet Gateway Device port mapping (port of geth's p2p/nat/natupnp.go).

geth uses the ``goupnp`` library; here its small part that geth needs is
written with the standard library:

- :func:`ssdp_raw_search` sends an SSDP ``M-SEARCH`` for a device type and
  reads the answers (their ``LOCATION`` header names the device description);
- :func:`device_by_url` fetches that XML description (``xml.etree``) into a
  :class:`RootDevice` tree of devices and services;
- :class:`ServiceClient` calls the SOAP actions ``GetExternalIPAddress``,
  ``AddPortMapping``, ``DeletePortMapping`` and ``GetNATRSIPStatus`` on a
  WANIPConnection/WANPPPConnection service with ``http.client``.

The SSDP address (239.255.255.250:1900), the search wait and the SOAP
timeout are parameters, so tests point them at a fake gateway on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import ipaddress
import queue
import select
import socket
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape

from p2p.log import get_logger
from p2p.nat.nat import Interface, NATError, interface_addrs
from p2p.netutil.net import to_ip

__all__ = [
    "SOAP_REQUEST_TIMEOUT", "SSDP_ADDR", "SEARCH_TIMEOUT", "SOAPError", "UPnP", "discover_upnp",
    "discover", "discover_devices", "ssdp_raw_search", "device_by_url", "RootDevice", "Device",
    "Service", "ServiceClient",
    "URN_WANConnectionDevice_1", "URN_WANConnectionDevice_2", "URN_WANIPConnection_1",
    "URN_WANIPConnection_2", "URN_WANPPPConnection_1",
]

log = get_logger("p2p.nat")

SOAP_REQUEST_TIMEOUT = 3.0  # seconds, for every HTTP request to the gateway
SSDP_ADDR = ("239.255.255.250", 1900)  # the SSDP multicast group
SEARCH_TIMEOUT = 2.0  # how long an M-SEARCH collects answers (its MX)
SSDP_SENDS = 3  # UDP is lossy: the search is sent this many times
MAX_RESPONSE_SIZE = 1 << 20  # cap on a device description or SOAP reply

# Device and service types (goupnp's internetgateway1/2 constants).
URN_WANConnectionDevice_1 = "urn:schemas-upnp-org:device:WANConnectionDevice:1"
URN_WANConnectionDevice_2 = "urn:schemas-upnp-org:device:WANConnectionDevice:2"
URN_WANIPConnection_1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
URN_WANIPConnection_2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
URN_WANPPPConnection_1 = "urn:schemas-upnp-org:service:WANPPPConnection:1"

_SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_SOAP_ENC_NS = "http://schemas.xmlsoap.org/soap/encoding/"


class SOAPError(NATError):
    """The gateway answered a SOAP action with a fault (e.g. a refused mapping)."""

    def __init__(self, action, fault_code, fault_string, error_code=None, error_description=""):
        self.action = action
        self.fault_code = fault_code
        self.fault_string = fault_string
        self.error_code = error_code
        self.error_description = error_description
        detail = ""
        if error_code is not None:
            detail = ": UPnPError %s" % error_code
            if error_description:
                detail += " (%s)" % error_description
        super().__init__("UPnP %s failed: SOAP fault %s %s%s" % (action, fault_code, fault_string, detail))


class UPnP(Interface):
    """A UPnP gateway service behind the common Interface (geth's ``upnp``).

    ``dev`` is the gateway's :class:`RootDevice`, ``service`` a short name of
    the service found (``"IGDv1-IP1"``...), ``client`` its :class:`ServiceClient`.
    """

    def __init__(self, dev, service, client):
        self.dev = dev
        self.service = service
        self.client = client

    def external_ip(self):
        ip_string = self.client.get_external_ip_address()
        ip = to_ip(ip_string.strip())
        if ip is None:
            raise NATError("bad IP in response: %r" % (ip_string,))
        return ip

    def add_mapping(self, protocol, ext_port, int_port, desc, lifetime):
        # geth returns nil when the internal address is unknown; the error is
        # raised here so map() logs why nothing was mapped.
        ip = self.internal_address()
        protocol = protocol.upper()
        lifetime_s = int(lifetime)
        try:
            self.delete_mapping(protocol, ext_port, int_port)
        except (NATError, OSError) as err:  # usually "no such entry": fine
            log.trace("UPnP delete before add failed", err=err)
        self.client.add_port_mapping("", ext_port, protocol, int_port, str(ip), True, desc, lifetime_s)

    def internal_address(self):
        """Our address on the gateway's network: the local interface address
        whose network contains the gateway's address."""
        host = self.dev.url_base.hostname
        dev_ip = to_ip(host or "")
        if dev_ip is None:
            try:
                dev_ip = to_ip(socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0])
            except (OSError, IndexError, TypeError) as err:
                raise NATError("can't resolve gateway host %r: %s" % (host, err))
        for iface in interface_addrs():
            if iface.version == dev_ip.version and dev_ip in iface.network:
                return iface.ip
        # Routed gateway: ask the kernel which source address it would use.
        # Connecting a UDP socket sends nothing.
        if not dev_ip.is_loopback:
            family = socket.AF_INET6 if dev_ip.version == 6 else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_DGRAM) as s:
                    s.connect((str(dev_ip), self.dev.url_base.port or 80))
                    return ipaddress.ip_address(s.getsockname()[0])
            except OSError:
                pass
        raise NATError("could not find local address in same net as %s" % dev_ip)

    def delete_mapping(self, protocol, ext_port, int_port):
        self.client.delete_port_mapping("", ext_port, protocol.upper())

    def __str__(self):
        return "UPNP " + self.service

    __repr__ = __str__


def discover_upnp(ssdp_addr=SSDP_ADDR, search_timeout=SEARCH_TIMEOUT, soap_timeout=SOAP_REQUEST_TIMEOUT):
    """Search the LAN for an Internet Gateway Device (v1 and v2 at once) and
    return a :class:`UPnP` for the first usable one, or None."""
    found = queue.Queue(maxsize=2)
    # Once one search has found a gateway, the other is cancelled through
    # this socket pair (a read end select() can wait on).
    cancel_r, cancel_w = socket.socketpair()
    kw = dict(ssdp_addr=ssdp_addr, search_timeout=search_timeout, soap_timeout=soap_timeout, cancel=cancel_r)

    def igd1(dev, sc):
        st = sc.service.service_type
        if st == URN_WANIPConnection_1:
            return UPnP(dev, "IGDv1-IP1", sc)
        if st == URN_WANPPPConnection_1:
            return UPnP(dev, "IGDv1-PPP1", sc)
        return None

    def igd2(dev, sc):
        st = sc.service.service_type
        if st == URN_WANIPConnection_1:
            return UPnP(dev, "IGDv2-IP1", sc)
        if st == URN_WANIPConnection_2:
            return UPnP(dev, "IGDv2-IP2", sc)
        if st == URN_WANPPPConnection_1:
            return UPnP(dev, "IGDv2-PPP1", sc)
        return None

    threads = [
        threading.Thread(target=discover, args=(found, target, matcher), kwargs=kw, name=name, daemon=True)
        for target, matcher, name in ((URN_WANConnectionDevice_1, igd1, "nat.discover.IGDv1"),
                                      (URN_WANConnectionDevice_2, igd2, "nat.discover.IGDv2"))
    ]
    for t in threads:
        t.start()
    result = None
    try:
        for _ in threads:
            c = found.get()
            if c is not None:
                result = c
                break
    finally:
        cancel_w.send(b"x")
        for t in threads:
            t.join()  # quick: searches wake on the cancel, HTTP requests are bounded
        cancel_r.close()
        cancel_w.close()
    return result


def discover(out, target, matcher, ssdp_addr=SSDP_ADDR, search_timeout=SEARCH_TIMEOUT,
             soap_timeout=SOAP_REQUEST_TIMEOUT, cancel=None):
    """Find devices of type ``target`` and offer each of their services to
    ``matcher(root_device, service_client)``. The first match whose gateway
    says NAT is enabled is put into ``out``; None is put if nothing matched.
    ``cancel`` (a socket) ends the search early when it becomes readable."""
    try:
        for maybe in discover_devices(target, ssdp_addr, search_timeout, soap_timeout, cancel):
            if maybe.root is None:
                log.trace("UPnP device description failed", location=maybe.location, err=maybe.err)
                continue
            result = []

            def visit(service, root=maybe.root, location=maybe.location):
                if result:
                    return
                sc = ServiceClient(service, root, location, soap_timeout)
                u = matcher(root, sc)
                if u is None:
                    return
                # Only a gateway with NAT enabled can map ports.
                try:
                    _, nat = u.client.get_nat_rsip_status()
                except (NATError, OSError, ValueError) as err:
                    log.trace("UPnP GetNATRSIPStatus failed", service=u.service, err=err)
                    return
                if nat:
                    result.append(u)

            maybe.root.device.visit_services(visit)
            if result:
                out.put(result[0])
                return
    except Exception as err:  # a broken network must not kill discovery silently
        log.debug("UPnP discovery failed", target=target, err=err)
    out.put(None)


# ---------------------------------------------------------------------------
# SSDP (goupnp's httpu / ssdp packages)


class MaybeRootDevice:
    """A search answer: the description's URL and either the parsed device or the error."""

    __slots__ = ("location", "root", "err")

    def __init__(self, location, root=None, err=None):
        self.location = location
        self.root = root
        self.err = err


def discover_devices(target, ssdp_addr=SSDP_ADDR, search_timeout=SEARCH_TIMEOUT, soap_timeout=SOAP_REQUEST_TIMEOUT,
                     cancel=None):
    """Yield a :class:`MaybeRootDevice` for each device answering an SSDP
    search for ``target``, as the answers arrive, until ``search_timeout``."""
    for headers in ssdp_raw_search(target, ssdp_addr, search_timeout, cancel):
        location = headers.get("location", "")
        try:
            yield MaybeRootDevice(location, root=device_by_url(location, soap_timeout))
        except (NATError, OSError, ValueError, ET.ParseError, http.client.HTTPException) as err:
            yield MaybeRootDevice(location, err=err)


def _msearch(target, ssdp_addr, search_timeout):
    return ("M-SEARCH * HTTP/1.1\r\n"
            "HOST: %s:%d\r\n"
            "MAN: \"ssdp:discover\"\r\n"
            "MX: %d\r\n"
            "ST: %s\r\n"
            "\r\n" % (ssdp_addr[0], ssdp_addr[1], max(1, int(round(search_timeout))), target)).encode()


def parse_ssdp_response(data: bytes):
    """Headers (lower-cased names) of an SSDP ``HTTP/1.x 200`` answer, or None."""
    try:
        text = data.decode("utf-8", "replace")
    except Exception:
        return None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    status = lines[0].split(None, 2)
    if len(status) < 2 or not status[0].upper().startswith("HTTP/") or status[1] != "200":
        return None
    headers = {}
    for line in lines[1:]:
        if not line:
            break
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def ssdp_raw_search(target, ssdp_addr=SSDP_ADDR, search_timeout=SEARCH_TIMEOUT, cancel=None):
    """Send an M-SEARCH for ``target`` to ``ssdp_addr`` and yield the headers
    of each distinct matching answer until ``search_timeout`` seconds pass
    or ``cancel`` (a socket) becomes readable."""
    addr = (str(ssdp_addr[0]), int(ssdp_addr[1]))
    ip = to_ip(addr[0])
    family = socket.AF_INET6 if ip is not None and ip.version == 6 else socket.AF_INET
    msg = _msearch(target, addr, search_timeout)
    seen = set()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if ip is not None and ip.is_multicast and family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        for _ in range(SSDP_SENDS):
            sock.sendto(msg, addr)
        deadline = time.monotonic() + search_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            waitset = [sock] if cancel is None else [sock, cancel]
            ready, _, _ = select.select(waitset, [], [], remaining)
            if not ready:
                return
            if cancel is not None and cancel in ready:
                return
            try:
                data, _ = sock.recvfrom(65536)
            except ConnectionRefusedError:
                continue  # ICMP from a closed port: keep waiting for others
            headers = parse_ssdp_response(data)
            if headers is None:
                continue
            if headers.get("st") != target or not headers.get("location"):
                continue
            key = headers.get("usn") or headers["location"]
            if key in seen:
                continue
            seen.add(key)
            yield headers


# ---------------------------------------------------------------------------
# Device descriptions (goupnp's RootDevice, Device, Service)


def _local(tag):
    """An element tag without its namespace."""
    return tag.rsplit("}", 1)[-1] if "}" in tag else tag


def _child(elem, name):
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _child_text(elem, name):
    c = _child(elem, name)
    return (c.text or "").strip() if c is not None else ""


class Service:
    """A service of a device; URL fields are resolved against the root's URL base."""

    def __init__(self, elem=None):
        self.service_type = self.service_id = ""
        self.scpd_url = self.control_url = self.event_sub_url = ""
        if elem is not None:
            self.service_type = _child_text(elem, "serviceType")
            self.service_id = _child_text(elem, "serviceId")
            self.scpd_url = _child_text(elem, "SCPDURL")
            self.control_url = _child_text(elem, "controlURL")
            self.event_sub_url = _child_text(elem, "eventSubURL")

    def set_url_base(self, base):
        self.scpd_url = urllib.parse.urljoin(base, self.scpd_url)
        self.control_url = urllib.parse.urljoin(base, self.control_url)
        self.event_sub_url = urllib.parse.urljoin(base, self.event_sub_url)


class Device:
    """A (possibly embedded) device: its type, names, services and child devices."""

    def __init__(self, elem=None):
        self.device_type = self.friendly_name = self.manufacturer = self.model_name = self.udn = ""
        self.services = []
        self.devices = []
        if elem is None:
            return
        self.device_type = _child_text(elem, "deviceType")
        self.friendly_name = _child_text(elem, "friendlyName")
        self.manufacturer = _child_text(elem, "manufacturer")
        self.model_name = _child_text(elem, "modelName")
        self.udn = _child_text(elem, "UDN")
        sl = _child(elem, "serviceList")
        if sl is not None:
            self.services = [Service(s) for s in sl if _local(s.tag) == "service"]
        dl = _child(elem, "deviceList")
        if dl is not None:
            self.devices = [Device(d) for d in dl if _local(d.tag) == "device"]

    def set_url_base(self, base):
        for s in self.services:
            s.set_url_base(base)
        for d in self.devices:
            d.set_url_base(base)

    def visit_devices(self, visitor):
        """Call ``visitor`` on this device and all embedded devices, depth first."""
        visitor(self)
        for d in self.devices:
            d.visit_devices(visitor)

    def visit_services(self, visitor):
        """Call ``visitor`` on every service of this device tree."""
        def each(d):
            for s in d.services:
                visitor(s)
        self.visit_devices(each)


class RootDevice:
    """A parsed device description. ``url_base_str`` is its ``URLBase``
    element if present, else the URL it was fetched from."""

    def __init__(self, elem, location):
        self.spec_version = None
        sv = _child(elem, "specVersion")
        if sv is not None:
            try:
                self.spec_version = (int(_child_text(sv, "major") or 0), int(_child_text(sv, "minor") or 0))
            except ValueError:
                pass
        dev = _child(elem, "device")
        if dev is None:
            raise NATError("device description at %s has no <device>" % location)
        self.device = Device(dev)
        base = _child_text(elem, "URLBase") or location
        self.set_url_base(base)

    def set_url_base(self, base):
        self.url_base_str = base
        self.url_base = urllib.parse.urlsplit(base)
        self.device.set_url_base(base)


def _http_request(method, url, timeout, body=None, headers=None):
    """One HTTP request; returns (status, body bytes)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise NATError("unsupported URL %r" % (url,))
    cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = cls(u.hostname, u.port, timeout=timeout)
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read(MAX_RESPONSE_SIZE + 1)
        if len(data) > MAX_RESPONSE_SIZE:
            raise NATError("response from %s too large" % url)
        return resp.status, data
    finally:
        conn.close()


def device_by_url(location, timeout=SOAP_REQUEST_TIMEOUT):
    """Fetch and parse the device description at ``location``."""
    status, data = _http_request("GET", location, timeout)
    if status != 200:
        raise NATError("device description %s: HTTP %d" % (location, status))
    # Some devices send whitespace before the XML declaration, which expat rejects.
    return RootDevice(ET.fromstring(data.strip()), location)


# ---------------------------------------------------------------------------
# SOAP actions (goupnp's soap package and the WAN*Connection clients)


def _parse_bool(s):
    v = s.strip().lower()
    if v in ("1", "true", "yes"):
        return True
    if v in ("0", "false", "no"):
        return False
    raise ValueError("bad UPnP boolean %r" % (s,))


class ServiceClient:
    """SOAP client for one WANIPConnection / WANPPPConnection service.

    The three IGD connection services share the actions used here, so one
    class serves them all (goupnp generates one per service).
    """

    def __init__(self, service, root_device, location, timeout=SOAP_REQUEST_TIMEOUT):
        self.service = service
        self.root_device = root_device
        self.location = location
        self.timeout = timeout

    def perform_action(self, action, args=()):
        """Call ``action`` with ``args`` (name, value pairs); return the reply's fields."""
        st = self.service.service_type
        body = ('<?xml version="1.0" encoding="utf-8"?>'
                '<s:Envelope xmlns:s="%s" s:encodingStyle="%s"><s:Body><u:%s xmlns:u="%s">%s</u:%s>'
                '</s:Body></s:Envelope>' % (
                    _SOAP_ENV_NS, _SOAP_ENC_NS, action, _xml_escape(st),
                    "".join("<%s>%s</%s>" % (k, _xml_escape(str(v)), k) for k, v in args), action)).encode()
        headers = {
            "Content-Type": 'text/xml; charset="utf-8"',
            "SOAPAction": '"%s#%s"' % (st, action),
        }
        status, data = _http_request("POST", self.service.control_url, self.timeout, body, headers)
        try:
            env = ET.fromstring(data.strip()) if data.strip() else None
        except ET.ParseError as err:
            raise NATError("UPnP %s: bad SOAP reply (HTTP %d): %s" % (action, status, err))
        soap_body = _child(env, "Body") if env is not None else None
        if soap_body is not None:
            fault = _child(soap_body, "Fault")
            if fault is not None:
                code = desc = None
                detail = _child(fault, "detail")
                uerr = _child(detail, "UPnPError") if detail is not None else None
                if uerr is not None:
                    code = _child_text(uerr, "errorCode") or None
                    desc = _child_text(uerr, "errorDescription")
                raise SOAPError(action, _child_text(fault, "faultcode"), _child_text(fault, "faultstring"),
                                code, desc or "")
        if status != 200:
            raise NATError("UPnP %s: HTTP %d" % (action, status))
        if soap_body is None or len(soap_body) == 0:
            raise NATError("UPnP %s: SOAP reply has no body" % action)
        # Fields are read by local name: some devices forget their namespaces.
        return {_local(e.tag): (e.text or "") for e in soap_body[0]}

    def get_external_ip_address(self):
        return self.perform_action("GetExternalIPAddress").get("NewExternalIPAddress", "")

    def add_port_mapping(self, remote_host, external_port, protocol, internal_port, internal_client,
                         enabled, description, lease_duration):
        self.perform_action("AddPortMapping", (
            ("NewRemoteHost", remote_host),
            ("NewExternalPort", int(external_port)),
            ("NewProtocol", protocol),
            ("NewInternalPort", int(internal_port)),
            ("NewInternalClient", internal_client),
            ("NewEnabled", "1" if enabled else "0"),
            ("NewPortMappingDescription", description),
            ("NewLeaseDuration", int(lease_duration)),
        ))

    def delete_port_mapping(self, remote_host, external_port, protocol):
        self.perform_action("DeletePortMapping", (
            ("NewRemoteHost", remote_host),
            ("NewExternalPort", int(external_port)),
            ("NewProtocol", protocol),
        ))

    def get_nat_rsip_status(self):
        """(RSIP available, NAT enabled)."""
        r = self.perform_action("GetNATRSIPStatus")
        return _parse_bool(r.get("NewRSIPAvailable", "0")), _parse_bool(r.get("NewNATEnabled", "0"))
