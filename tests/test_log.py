"""geth-style logging: levels, key/value context, lazy formatting, verbosity."""

import io
import logging

import pytest

from p2p import log as p2plog


@pytest.fixture
def stream():
    s = io.StringIO()
    p2plog.set_verbosity(5, stream=s)
    yield s
    root = logging.getLogger("p2p")
    for h in list(root.handlers):
        if getattr(h, "_gethp2p", False):
            root.removeHandler(h)
    root.setLevel(logging.NOTSET)
    root.propagate = True


def test_trace_line_with_context(stream):
    l = p2plog.get_logger("p2p.test", id="ab")
    l.trace(">> PING/v4", addr="127.0.0.1:30303", err=None, self="enode://x", msg="m")
    line = stream.getvalue()
    assert line.startswith("TRACE")
    assert ">> PING/v4" in line
    assert "id=ab addr=127.0.0.1:30303 err=None self=enode://x msg=m" in line


def test_values_with_spaces_are_quoted_and_bytes_are_hex(stream):
    p2plog.get_logger("p2p.test").debug("x", reason="too many peers", id=b"\x01\x02")
    assert 'reason="too many peers" id=0102' in stream.getvalue()


def test_child_logger_adds_context(stream):
    p2plog.get_logger("p2p.test").new(peer="p1").info("hello", n=1)
    assert "peer=p1 n=1" in stream.getvalue()


def test_verbosity_filters_levels(stream):
    p2plog.set_verbosity(3, stream=stream)
    l = p2plog.get_logger("p2p.test")
    l.debug("hidden")
    l.trace("hidden too")
    l.warn("shown")
    out = stream.getvalue()
    assert "hidden" not in out and "shown" in out


def test_context_is_formatted_only_when_enabled(stream):
    p2plog.set_verbosity(2, stream=stream)

    class Boom:
        def __str__(self):
            raise AssertionError("formatted a disabled line")

    p2plog.get_logger("p2p.test").trace("never", v=Boom())


def test_bad_verbosity():
    with pytest.raises(ValueError):
        p2plog.set_verbosity(9)
