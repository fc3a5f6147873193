"""Twin of geth's adapters/ws_test.go."""

import io

import pytest

from p2p.simulations.adapters.ws import find_ws_addr


def test_find_ws_addr():
    line = ('t=2018-05-02T19:00:45+0200 lvl=info msg="WebSocket endpoint opened"  '
            'node.id=26c65a606d1125a44695bc08573190d047152b6b9a776ccbbe593e90f91444d9c1ebdadac6a775ad9fdd0923468a1d6'
            '98ed3a842c1fb89c1bc0f9d4801f8c39c url=ws://127.0.0.1:59975')
    got = find_ws_addr(io.StringIO(line), 10.0)
    assert got == "ws://127.0.0.1:59975"


def test_find_ws_addr_stream_ends_without_it():
    with pytest.raises(ValueError, match="empty result"):
        find_ws_addr(io.StringIO("lvl=info msg=hello\n"), 10.0)
