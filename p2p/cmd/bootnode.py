"""bootnode: a bootstrap node for the discovery protocol (port of geth's cmd/bootnode).

Usage::

    bootnode --genkey boot.key                  # write a new node key and exit
    bootnode --nodekey boot.key --writeaddress  # print the node ID and exit
    bootnode --nodekey boot.key --writeaddress --enr --addr 127.0.0.1:30301
                                                # print the node record (enr:...) and exit
    bootnode --nodekey boot.key --addr :30301   # serve discovery v4
    bootnode --nodekey boot.key --v5            # serve v5 topic discovery instead

When serving, the node's enode URL is the first line on stdout (with ``--enr``, its
record follows; it is logged at start in any case); the process then
answers discovery requests until SIGINT or SIGTERM, and exits 0 after closing.
Usage errors and unreadable keys print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys
import threading

from p2p import crypto, enr, version_string
from p2p.discover.udp import Config, UDPConn, listen_udp
from p2p.discover.node import new_node, pubkey_id, split_host_port
from p2p.log import get_logger, set_verbosity
from p2p.nat.nat import map as nat_map, parse as nat_parse
from p2p.netutil.net import parse_netlist

log = get_logger("p2p.cmd.bootnode")

EXIT_USAGE = 2


class _Fatal(Exception):
    """A fatal error: printed as one line on stderr, then exit with ``code``."""

    def __init__(self, msg, code=EXIT_USAGE):
        super().__init__(msg)
        self.code = code


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise _Fatal(message)


def _build_parser() -> argparse.ArgumentParser:
    # Go's flag package accepts -flag and --flag alike; so does this parser.
    p = _ArgumentParser(prog="bootnode", allow_abbrev=False,
                        description="Run a bootstrap node for the Ethereum discovery protocol (v4, or v5 with -v5).")
    p.add_argument("-version", "--version", action="version", version=version_string("bootnode"))
    p.add_argument("-addr", "--addr", default=":30301", help="listen address (default :30301)")
    p.add_argument("-genkey", "--genkey", default="", metavar="FILE", help="generate a node key")
    p.add_argument("-writeaddress", "--writeaddress", action="store_true",
                   help="write out the node's public key and quit")
    p.add_argument("-enr", "--enr", action="store_true",
                   help="with -writeaddress: write the node record (enr:...) instead of the ID; "
                        "when serving: write it after the enode URL")
    p.add_argument("-nodekey", "--nodekey", default="", metavar="FILE", help="private key filename")
    p.add_argument("-nodekeyhex", "--nodekeyhex", default="", metavar="HEX",
                   help="private key as hex (for testing)")
    p.add_argument("-nat", "--nat", default="none",
                   help="port mapping mechanism (any|none|upnp|pmp|extip:<IP>)")
    p.add_argument("-netrestrict", "--netrestrict", default="", metavar="CIDRS",
                   help="restrict network communication to the given IP networks (CIDR masks)")
    p.add_argument("-v5", "--v5", action="store_true", help="run a v5 topic discovery bootnode")
    p.add_argument("-vmodule", "--vmodule", default="",
                   help="log verbosity pattern (accepted for compatibility, ignored)")
    p.add_argument("-verbosity", "--verbosity", type=int, default=3, choices=range(6),
                   metavar="0..5", help="log verbosity (0-5)")
    return p


def _parse_nat(spec: str):
    """The NAT mechanism for ``--nat`` (p2p.nat.parse; ValueError if invalid)."""
    return nat_parse(spec)


def _resolve_udp_addr(listen_addr: str):
    """``HOST:PORT`` -> a bindable ``(host, port)``; an empty host means all interfaces."""
    try:
        host, port = split_host_port(listen_addr)
    except ValueError as e:
        raise _Fatal("-addr: %s" % e) from None
    if not port.isdigit() or int(port) > 0xFFFF:
        raise _Fatal("-addr: invalid port %r" % port)
    if host == "":
        return "0.0.0.0", int(port)
    try:
        ipaddress.ip_address(host)
        return host, int(port)
    except ValueError:
        pass
    try:
        info = socket.getaddrinfo(host, int(port), 0, socket.SOCK_DGRAM)
    except OSError as e:
        raise _Fatal("-addr: %s" % e) from None
    return info[0][4][0], int(port)


def _load_key(args):
    """The node key from the flags, or None when --genkey alone asks to stop."""
    if args.genkey:
        key = crypto.generate_key()
        try:
            crypto.save_ecdsa(args.genkey, key)
        except OSError as e:
            raise _Fatal(str(e)) from None
        return key
    if not args.nodekey and not args.nodekeyhex:
        raise _Fatal("Use -nodekey or -nodekeyhex to specify a private key")
    if args.nodekey and args.nodekeyhex:
        raise _Fatal("Options -nodekey and -nodekeyhex are mutually exclusive")
    if args.nodekey:
        try:
            return crypto.load_ecdsa(args.nodekey)
        except (OSError, ValueError) as e:
            raise _Fatal("-nodekey: %s" % e) from None
    try:
        return crypto.hex_to_ecdsa(args.nodekeyhex)
    except ValueError as e:
        raise _Fatal("-nodekeyhex: %s" % e) from None


def _record(key, host: str, port: int) -> enr.Record:
    """The record a bootnode on ``host:port`` starts with (seq 1; no IP if unspecified),
    as discovery signs it (udp._sign_record)."""
    r = enr.Record()
    ip = ipaddress.ip_address(host)
    if not ip.is_unspecified:
        r.set(enr.IP(ip) if ip.version == 4 else enr.IP6(ip))
    r.set(enr.TCP(port))
    r.set(enr.UDP(port))
    r.set_seq(1)
    enr.sign_v4(r, key)
    return r


def run(argv=None, stdout=None) -> int:
    """The command; returns the exit code. Raises _Fatal for fatal errors."""
    out = stdout or sys.stdout
    args = _build_parser().parse_args(argv)
    set_verbosity(args.verbosity)

    try:
        natm = _parse_nat(args.nat)
    except ValueError as e:
        raise _Fatal("-nat: %s" % e) from None

    node_key = _load_key(args)
    if args.genkey and not args.writeaddress:
        return 0
    if args.writeaddress:
        if args.enr:
            host, port = _resolve_udp_addr(args.addr)
            out.write("%s\n" % enr.text(_record(node_key, host, port)))
        else:
            out.write("%s\n" % pubkey_id(node_key.public_key).hex())
        out.flush()
        return 0

    restrict_list = None
    if args.netrestrict:
        try:
            restrict_list = parse_netlist(args.netrestrict)
        except ValueError as e:
            raise _Fatal("-netrestrict: %s" % e) from None

    host, port = _resolve_udp_addr(args.addr)

    # Signals only set an Event; the main thread waits on it.
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            conn = UDPConn.listen(host, port)
        except OSError as e:
            raise _Fatal("-ListenUDP: %s" % e, code=1) from None

        realaddr = conn.local_addr()
        nat_quit = threading.Event()
        nat_thread = None
        if natm is not None:
            local_ip = ipaddress.ip_address(realaddr[0])
            if not local_ip.is_loopback:
                nat_thread = threading.Thread(
                    target=nat_map, name="nat.Map",
                    args=(natm, nat_quit, "udp", realaddr[1], realaddr[1], "ethereum discovery"),
                    daemon=True)
                nat_thread.start()
            try:
                ext = natm.external_ip()
            except Exception as e:  # the gateway may be gone; keep the local address
                log.debug("Couldn't get external IP", err=e)
            else:
                if ext is not None:
                    realaddr = (str(ext), realaddr[1])

        ip = ipaddress.ip_address(realaddr[0])
        if ip.is_unspecified:
            ip = ipaddress.ip_address("127.0.0.1")
        self_node = new_node(pubkey_id(node_key.public_key), ip, realaddr[1], realaddr[1])

        try:
            if args.v5:
                from p2p.discv5.udp import listen_udp as listen_udp_v5

                tab = listen_udp_v5(node_key, conn, realaddr, "", restrict_list)
            else:
                cfg = Config(private_key=node_key, announce_addr=realaddr, net_restrict=restrict_list)
                tab = listen_udp(conn, cfg)
        except Exception as e:
            conn.close()
            nat_quit.set()
            raise _Fatal(str(e), code=1) from None
        record = None
        if not args.v5:  # the v4 node's record (EIP-778); v5 has none here
            record = enr.text(tab.net.local_record())
            log.info("Node record", seq=tab.net.local_record().seq(), enr=record)
        # Printed once discovery runs, so whoever reads the URL can use it at once.
        out.write(self_node.string() + "\n")
        if args.enr and record is not None:
            out.write(record + "\n")
        out.flush()

        stop.wait()
        log.info("Got interrupt, shutting down...")
        tab.close()
        nat_quit.set()
        if nat_thread is not None:
            nat_thread.join(10)
        return 0
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)


def main(argv=None) -> int:
    """Console-script entry point."""
    try:
        code = run(argv)
    except _Fatal as e:
        sys.stderr.write("Fatal: %s\n" % e)
        sys.stderr.flush()
        code = e.code
    except KeyboardInterrupt:
        code = 0
    return code


if __name__ == "__main__":
    sys.exit(main())
