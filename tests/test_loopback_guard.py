import socket

import pytest

from tests.conftest import NonLoopbackError


def test_sendto_non_loopback_is_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NonLoopbackError):
            s.sendto(b"x", ("239.255.255.250", 1900))
        with pytest.raises(NonLoopbackError):
            s.sendto(b"x", ("192.168.1.1", 5351))
    finally:
        s.close()


def test_connect_non_loopback_is_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NonLoopbackError):
            s.connect(("10.0.0.1", 80))
    finally:
        s.close()


def test_loopback_is_allowed():
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        r.bind(("127.0.0.1", 0))
        r.settimeout(5)
        w.sendto(b"hello", r.getsockname())
        assert r.recvfrom(16)[0] == b"hello"
    finally:
        r.close()
        w.close()
