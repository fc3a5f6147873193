"""Tests for p2p/nat/natupnp.py (geth's natupnp_test.go and more).

The gateway is ``FakeIGD``: a UDP responder on 127.0.0.1 answering any
M-SEARCH with canned SSDP headers, and an HTTP server on 127.0.0.1 serving
the device description and SOAP actions.
"""

import http.server
import ipaddress
import logging
import queue
import select
import socket
import threading
import xml.etree.ElementTree as ET

import pytest

from p2p import nat
from p2p.nat import natupnp
from p2p.nat.natupnp import SOAPError, discover_upnp

from tests.nat.fakes import WAIT

SEARCH = 0.5  # SSDP wait in tests (seconds); discovery ends early when found


def test_upnp_ddwrt():
    dev = FakeIGD(DDWRT_SSDP, {
        "GET /InternetGatewayDevice.xml": igd_description(),
        "POST /control?WANIPConnection": DDWRT_NATRSIP,
    })
    with dev:
        discovered = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        assert discovered is not None, "not discovered"
        assert isinstance(discovered, natupnp.UPnP)
        assert discovered.service == "IGDv1-IP1"
        want_url = "http://%s:%d/InternetGatewayDevice.xml" % dev.listener.server_address[:2]
        assert discovered.dev.url_base_str == want_url
        assert str(discovered) == "UPNP IGDv1-IP1"
        # The M-SEARCH reached the fake and asked for the WAN connection device.
        first = dev.ssdp_requests.get(timeout=WAIT)
        assert b"M-SEARCH * HTTP/1.1" in first and b'MAN: "ssdp:discover"' in first
        # Discovery checked that NAT is enabled.
        assert dev.wait_action("GetNATRSIPStatus") == {}


class FakeIGD:
    """A discoverable UPnP device answering SSDP and HTTP with canned replies.

    ``ssdp_resp`` is the complete SSDP answer; ``http_resps`` maps
    ``"METHOD path"`` to a body, and ``"POST path#Action"`` to the body for one
    SOAP action (a tuple ``(status, body)`` sets the HTTP status).
    ``{{listenAddr}}`` in either is replaced with the HTTP server's address.
    Every HTTP request is put into ``requests`` as ``(method, path, action, args)``.
    """

    def __init__(self, ssdp_resp, http_resps):
        self.ssdp_resp = ssdp_resp
        self.http_resps = http_resps
        self.requests = queue.Queue()
        self.ssdp_requests = queue.Queue()
        self.listener = None
        self.mcast_listener = None
        self._threads = []

    # SSDP side (Go: httpu.Handler)
    def serve_message(self, data, addr):
        self.ssdp_requests.put(data)
        if not data.startswith(b"M-SEARCH"):
            return
        self.mcast_listener.sendto(self.replace_listen_addr(self.ssdp_resp).encode(), addr)

    # HTTP side (Go: http.Handler)
    def serve_http(self, h):
        action, args = "", {}
        body = b""
        if h.command == "POST":
            body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
            action = h.headers.get("SOAPAction", "").strip('"').rpartition("#")[2]
            try:
                call = ET.fromstring(body).find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
                args = {c.tag: (c.text or "") for c in call}
            except (ET.ParseError, TypeError, IndexError):
                args = {"_unparsed": body}
        self.requests.put((h.command, h.path, action, args))
        key = h.command + " " + h.path
        resp = self.http_resps.get(key + "#" + action) if action else None
        if resp is None:
            resp = self.http_resps.get(key)
        if resp is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        status = 200
        if isinstance(resp, tuple):
            status, resp = resp
        out = self.replace_listen_addr(resp).encode()
        h.send_response(status)
        h.send_header("Content-Type", "text/xml")
        h.send_header("Content-Length", str(len(out)))
        h.end_headers()
        h.wfile.write(out)

    def replace_listen_addr(self, resp):
        return resp.replace("{{listenAddr}}", "%s:%d" % self.listener.server_address[:2])

    def listen(self):
        dev = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                dev.serve_http(self)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.listener.daemon_threads = False
        self.listener.block_on_close = True
        # Go listens on the real multicast group; here a loopback UDP socket
        # stands in for it and discovery is pointed at it.
        self.mcast_listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.mcast_listener.bind(("127.0.0.1", 0))
        self._wake_r, self._wake_w = socket.socketpair()

    @property
    def ssdp_addr(self):
        return self.mcast_listener.getsockname()

    def _ssdp_loop(self):
        while True:
            r, _, _ = select.select([self.mcast_listener, self._wake_r], [], [])
            if self._wake_r in r:
                return
            data, addr = self.mcast_listener.recvfrom(65536)
            self.serve_message(data, addr)

    def serve(self):
        self._threads = [
            threading.Thread(target=self._ssdp_loop, name="fakeIGD.ssdp", daemon=True),
            threading.Thread(target=self.listener.serve_forever, kwargs={"poll_interval": 0.05},
                             name="fakeIGD.http", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def close(self):
        self._wake_w.send(b"x")
        self.listener.shutdown()
        for t in self._threads:
            t.join(WAIT)
        self.listener.server_close()
        self.mcast_listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def wait_action(self, action, timeout=WAIT):
        """Wait for the next SOAP request of ``action``; return its arguments."""
        while True:
            _, _, a, args = self.requests.get(timeout=timeout)
            if a == action:
                return args

    def __enter__(self):
        self.listen()
        self.serve()
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# The DD-WRT device from geth's test

DDWRT_SSDP = (
    "HTTP/1.1 200 OK\r\n"
    "Cache-Control: max-age=300\r\n"
    "Date: Sun, 10 May 2015 10:05:33 GMT\r\n"
    "Ext: \r\n"
    "Location: http://{{listenAddr}}/InternetGatewayDevice.xml\r\n"
    "Server: POSIX UPnP/1.0 DD-WRT Linux/V24\r\n"
    "ST: urn:schemas-upnp-org:device:WANConnectionDevice:1\r\n"
    "USN: uuid:CB2471CC-CF2E-9795-8D9C-E87B34C16800::urn:schemas-upnp-org:device:WANConnectionDevice:1\r\n"
    "\r\n"
)


def _service(stype, sid, name):
    return """
             <service>
               <serviceType>%s</serviceType>
               <serviceId>urn:upnp-org:serviceId:%s</serviceId>
               <SCPDURL>/x_%s.xml</SCPDURL>
               <controlURL>/control?%s</controlURL>
               <eventSubURL>/event?%s</eventSubURL>
             </service>""" % (stype, sid, name.lower(), name, name)


def igd_description(version=1, conn_service="WANIPConnection:1", conn_name="WANIPConnection", url_base=None):
    """A gateway description shaped like DD-WRT's: root IGD > WANDevice >
    WANConnectionDevice (the connection service) and a LANDevice."""
    return """
     <?xml version="1.0"?>
     <root xmlns="urn:schemas-upnp-org:device-1-0">
       <specVersion><major>1</major><minor>0</minor></specVersion>
       %(urlbase)s
       <device>
         <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:%(v)d</deviceType>
         <manufacturer>DD-WRT</manufacturer>
         <friendlyName>Asus RT-N16:DD-WRT</friendlyName>
         <modelName>Asus RT-N16</modelName>
         <UDN>uuid:A13AB4C3-3A14-E386-DE6A-EFEA923A06FE</UDN>
         <serviceList>%(l3)s
         </serviceList>
         <deviceList>
           <device>
             <deviceType>urn:schemas-upnp-org:device:WANDevice:%(v)d</deviceType>
             <friendlyName>WANDevice</friendlyName>
             <UDN>uuid:48FD569B-F9A9-96AE-4EE6-EB403D3DB91A</UDN>
             <serviceList>%(common)s
             </serviceList>
             <deviceList>
               <device>
                 <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:%(v)d</deviceType>
                 <friendlyName>WAN Connection Device</friendlyName>
                 <UDN>uuid:CB2471CC-CF2E-9795-8D9C-E87B34C16800</UDN>
                 <serviceList>%(conn)s
                 </serviceList>
               </device>
             </deviceList>
           </device>
           <device>
             <deviceType>urn:schemas-upnp-org:device:LANDevice:%(v)d</deviceType>
             <friendlyName>LANDevice</friendlyName>
             <UDN>uuid:04021998-3B35-2BDB-7B3C-99DA4435DA09</UDN>
             <serviceList>%(lan)s
             </serviceList>
           </device>
         </deviceList>
         <presentationURL>http://{{listenAddr}}</presentationURL>
       </device>
     </root>
    """ % {
        "v": version,
        "urlbase": "<URLBase>%s</URLBase>" % url_base if url_base else "",
        "l3": _service("urn:schemas-upnp-org:service:Layer3Forwarding:1", "L3Forwarding1", "Layer3Forwarding"),
        "common": _service("urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1", "WANCommonIFC1",
                           "WANCommonInterfaceConfig"),
        "conn": _service("urn:schemas-upnp-org:service:%s" % conn_service, "WANIPConn1", conn_name),
        "lan": _service("urn:schemas-upnp-org:service:LANHostConfigManagement:1", "LANHostCfg1",
                        "LANHostConfigManagement"),
    }


# DD-WRT's GetNATRSIPStatus answer: the fields inside the response element
# lack their namespace, which the parser must tolerate.
DDWRT_NATRSIP = """
     <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
     <s:Body>
     <u:GetNATRSIPStatusResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">
     <NewRSIPAvailable>0</NewRSIPAvailable>
     <NewNATEnabled>1</NewNATEnabled>
     </u:GetNATRSIPStatusResponse>
     </s:Body>
     </s:Envelope>
"""


def soap_response(action, service="urn:schemas-upnp-org:service:WANIPConnection:1", **fields):
    inner = "".join("<%s>%s</%s>" % (k, v, k) for k, v in fields.items())
    return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            '<u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>' % (action, service, inner, action))


def soap_fault(code, desc):
    return (500, '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
                 's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault>'
                 '<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>'
                 '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode>'
                 '<errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>'
                 % (code, desc))


def full_igd(add_resp=None, ext_ip="203.0.113.7", nat_enabled=1, **desc_kw):
    """A fake answering each SOAP action used by UPnP."""
    version = desc_kw.get("version", 1)
    st = "urn:schemas-upnp-org:device:WANConnectionDevice:%d" % version
    ssdp = DDWRT_SSDP.replace("urn:schemas-upnp-org:device:WANConnectionDevice:1", st)
    ctl = "POST /control?" + desc_kw.get("conn_name", "WANIPConnection")
    svc = "urn:schemas-upnp-org:service:" + desc_kw.get("conn_service", "WANIPConnection:1")
    return FakeIGD(ssdp, {
        "GET /InternetGatewayDevice.xml": igd_description(**desc_kw),
        ctl + "#GetNATRSIPStatus": soap_response("GetNATRSIPStatus", svc, NewRSIPAvailable=0,
                                                 NewNATEnabled=nat_enabled),
        ctl + "#GetExternalIPAddress": soap_response("GetExternalIPAddress", svc, NewExternalIPAddress=ext_ip),
        ctl + "#AddPortMapping": add_resp or soap_response("AddPortMapping", svc),
        ctl + "#DeletePortMapping": soap_response("DeletePortMapping", svc),
    })


def test_upnp_mapping_actions():
    with full_igd() as dev:
        m = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        assert m is not None
        assert m.external_ip() == ipaddress.ip_address("203.0.113.7")
        assert m.internal_address() == ipaddress.ip_address("127.0.0.1")

        m.add_mapping("tcp", 30303, 30304, "ethereum p2p", 20 * 60)
        # geth deletes any old mapping first, then adds.
        assert dev.wait_action("DeletePortMapping") == {
            "NewRemoteHost": "", "NewExternalPort": "30303", "NewProtocol": "TCP"}
        assert dev.wait_action("AddPortMapping") == {
            "NewRemoteHost": "", "NewExternalPort": "30303", "NewProtocol": "TCP",
            "NewInternalPort": "30304", "NewInternalClient": "127.0.0.1", "NewEnabled": "1",
            "NewPortMappingDescription": "ethereum p2p", "NewLeaseDuration": "1200"}

        m.delete_mapping("udp", 30303, 30304)
        assert dev.wait_action("DeletePortMapping") == {
            "NewRemoteHost": "", "NewExternalPort": "30303", "NewProtocol": "UDP"}


@pytest.mark.parametrize("version,conn_service,conn_name,want", [
    (1, "WANPPPConnection:1", "WANPPPConnection", "IGDv1-PPP1"),
    (2, "WANIPConnection:1", "WANIPConnection", "IGDv2-IP1"),
    (2, "WANIPConnection:2", "WANIPConnection", "IGDv2-IP2"),
    (2, "WANPPPConnection:1", "WANPPPConnection", "IGDv2-PPP1"),
])
def test_upnp_service_kinds(version, conn_service, conn_name, want):
    with full_igd(version=version, conn_service=conn_service, conn_name=conn_name) as dev:
        m = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        assert m is not None and m.service == want
        assert m.external_ip() == ipaddress.ip_address("203.0.113.7")


def test_upnp_nat_disabled_is_not_discovered():
    with full_igd(nat_enabled=0) as dev:
        assert discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH) is None
        assert dev.wait_action("GetNATRSIPStatus") == {}


def test_upnp_url_base_element_wins():
    # Control URLs resolve against <URLBase> when the device gives one.
    with full_igd() as dev:
        base = "http://%s:%d/" % dev.listener.server_address[:2]
        dev.http_resps["GET /InternetGatewayDevice.xml"] = igd_description(url_base=base)
        m = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        assert m is not None
        assert m.dev.url_base_str == base
        assert m.client.service.control_url == base + "control?WANIPConnection"


def test_upnp_no_device():
    # Nothing answers the search: discovery gives up after the search wait.
    from tests.nat.fakes import SilentUDP

    with SilentUDP() as silent:
        assert discover_upnp(ssdp_addr=silent.addr, search_timeout=0.2) is None
        assert b"urn:schemas-upnp-org:device:WANConnectionDevice:" in silent.received.get(timeout=WAIT)


def test_upnp_bad_description_is_skipped():
    dev = FakeIGD(DDWRT_SSDP, {"GET /InternetGatewayDevice.xml": "<root><notclosed></root>"})
    with dev:
        assert discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH) is None


def test_upnp_add_mapping_refused():
    with full_igd(add_resp=soap_fault(718, "ConflictInMappingEntry")) as dev:
        m = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        with pytest.raises(SOAPError) as ei:
            m.add_mapping("TCP", 30303, 30303, "p2p", 1200)
        assert ei.value.error_code == "718"
        assert "718" in str(ei.value) and "ConflictInMappingEntry" in str(ei.value)
        assert "AddPortMapping" in str(ei.value)
        assert isinstance(ei.value, nat.NATError)


def test_upnp_map_refused_is_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="p2p.nat")
    with full_igd(add_resp=soap_fault(718, "ConflictInMappingEntry")) as dev:
        m = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        quit = threading.Event()
        t = threading.Thread(target=nat.map, args=(m, quit, "tcp", 30303, 30303, "p2p"),
                             kwargs={"update_interval": 0.02})
        t.start()
        dev.wait_action("AddPortMapping")
        dev.wait_action("AddPortMapping")  # still refreshing after the fault
        quit.set()
        t.join(WAIT)
        assert not t.is_alive()
    text = caplog.text
    assert "Couldn't add port mapping" in text and "ConflictInMappingEntry" in text


def test_upnp_map_refresh_and_delete():
    with full_igd() as dev:
        m = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        quit = threading.Event()
        t = threading.Thread(target=nat.map, args=(m, quit, "udp", 30301, 30301, "ethereum discovery"),
                             kwargs={"update_interval": 0.02, "lifetime": 60})
        t.start()
        first = dev.wait_action("AddPortMapping")
        again = dev.wait_action("AddPortMapping")  # the refresh
        assert first == again
        assert first["NewProtocol"] == "UDP" and first["NewLeaseDuration"] == "60"
        quit.set()
        t.join(WAIT)
        assert not t.is_alive()
        # The last request is the delete made on quit.
        last = None
        while not dev.requests.empty():
            last = dev.requests.get_nowait()
        assert last is not None and last[2] == "DeletePortMapping"
        assert last[3]["NewExternalPort"] == "30301"


def test_upnp_bad_external_ip():
    with full_igd(ext_ip="not-an-ip") as dev:
        m = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        with pytest.raises(nat.NATError, match="bad IP in response"):
            m.external_ip()


def test_upnp_http_error():
    with full_igd() as dev:
        m = discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH)
        del dev.http_resps["POST /control?WANIPConnection#GetExternalIPAddress"]
        with pytest.raises(nat.NATError, match="HTTP 404"):
            m.external_ip()


def test_upnp_via_parse():
    with full_igd() as dev:
        m = nat.parse("upnp", ssdp_addr=dev.ssdp_addr, timeout=SEARCH)
        assert str(m) == "UPnP"  # nothing discovered before the first use
        assert m.external_ip() == ipaddress.ip_address("203.0.113.7")
        assert str(m) == "UPNP IGDv1-IP1"


def test_parse_ssdp_response():
    ok = natupnp.parse_ssdp_response(b"HTTP/1.1 200 OK\r\nLOCATION: http://x/\r\nst: a\r\n\r\n")
    assert ok == {"location": "http://x/", "st": "a"}
    assert natupnp.parse_ssdp_response(b"HTTP/1.1 404 Not Found\r\n\r\n") is None
    assert natupnp.parse_ssdp_response(b"NOTIFY * HTTP/1.1\r\n\r\n") is None
    assert natupnp.parse_ssdp_response(b"") is None


def test_device_visit_services_order():
    root = natupnp.RootDevice(ET.fromstring(igd_description().strip().replace("{{listenAddr}}", "h:1")),
                              "http://h:1/desc.xml")
    seen = []
    root.device.visit_services(lambda s: seen.append(s.service_type.rsplit(":", 2)[-2]))
    assert seen == ["Layer3Forwarding", "WANCommonInterfaceConfig", "WANIPConnection", "LANHostConfigManagement"]
    assert root.url_base_str == "http://h:1/desc.xml"
    assert root.spec_version == (1, 0)


def test_upnp_searches_igd_v1_and_v2():
    with full_igd() as dev:
        assert discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=SEARCH) is not None
        targets = set()
        while len(targets) < 2:
            msg = dev.ssdp_requests.get(timeout=WAIT).decode()
            targets.update(line[4:] for line in msg.split("\r\n") if line.startswith("ST: "))
        assert targets == {natupnp.URN_WANConnectionDevice_1, natupnp.URN_WANConnectionDevice_2}


def test_upnp_found_cancels_other_search():
    # The IGDv2 search would wait a minute for answers; finding the IGDv1
    # gateway wakes it, so discovery returns at once with no thread left.
    with full_igd() as dev:
        result = queue.Queue()
        t = threading.Thread(target=lambda: result.put(discover_upnp(ssdp_addr=dev.ssdp_addr, search_timeout=60)))
        t.start()
        found = result.get(timeout=WAIT)
        t.join(WAIT)
        assert found is not None and found.service == "IGDv1-IP1"
        assert not any(th.name.startswith("nat.discover") for th in threading.enumerate())
