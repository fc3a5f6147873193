"""Tests for p2p.netutil.error (twin of geth's error_test.go, plus extras)."""

import errno
import socket

from p2p.netutil.error import is_packet_too_big, is_temporary_error, is_timeout


def test_is_packet_too_big():
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(1.0)
        sender.connect(listener.getsockname())
        send_n, recv_n = 1800, 300
        pattern = bytes(i & 0xFF for i in range(send_n))
        for _ in range(20):
            sender.send(pattern)
            try:
                buf, _ = listener.recvfrom(recv_n)
            except OSError as err:
                if is_timeout(err):
                    continue
                assert is_packet_too_big(err), "unexpected read error: %r" % err
                continue
            assert len(buf) == recv_n, "short read"
            assert buf == pattern[:recv_n], "error in pattern"
    finally:
        sender.close()
        listener.close()


def test_send_too_big_is_packet_too_big():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            s.sendto(b"x" * 70000, ("127.0.0.1", 9))
        except OSError as err:
            assert err.errno == errno.EMSGSIZE
            assert is_packet_too_big(err)
            assert is_temporary_error(err)
        else:  # pragma: no cover - every supported OS refuses a >64 KiB datagram
            raise AssertionError("oversized datagram was accepted")
    finally:
        s.close()


def test_is_temporary_error():
    assert is_temporary_error(socket.timeout("timed out"))
    assert is_temporary_error(OSError(errno.EINTR, "interrupted"))
    assert is_temporary_error(OSError(errno.EAGAIN, "again"))
    assert is_temporary_error(OSError(errno.EMFILE, "too many files"))
    assert not is_temporary_error(OSError(errno.EBADF, "bad fd"))
    assert not is_temporary_error(ValueError("x"))
    assert not is_temporary_error(None)

    class Temp(Exception):
        def temporary(self):
            return True

    assert is_temporary_error(Temp())


def test_is_timeout():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.01)
        try:
            s.recvfrom(10)
        except OSError as err:
            assert is_timeout(err)
            assert is_temporary_error(err)
        else:  # pragma: no cover
            raise AssertionError("recv on an idle socket returned data")
    finally:
        s.close()
    assert not is_timeout(OSError(errno.EBADF, "bad fd"))
    assert is_timeout(OSError(errno.ETIMEDOUT, "timed out"))
