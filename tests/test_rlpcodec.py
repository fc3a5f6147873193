"""p2p.rlpcodec on named cases: the strict rules, geth's messages, the typed readers.

The differential fuzz test (tests/fuzz/test_fuzz_rlpcodec.py) checks the codec against
pyrlp on random inputs; these are the cases a reader looks for by name.
"""

import pytest

from p2p import rlpcodec
from p2p.peer import ProtoHandshake
from p2p.rlpcodec import DecodeError


@pytest.mark.parametrize("data,why", [
    (b"", "unexpected EOF"),
    (b"\x81\x05", "non-canonical size"),             # one byte < 0x80 must stand alone
    (b"\xb8\x05hello", "non-canonical size"),        # long form for a short string
    (b"\xb9\x00\x38" + bytes(56), "non-canonical size"),  # length with a leading zero
    (b"\xf8\x01\x80", "non-canonical size"),         # long form for a short list
    (b"\x83ab", "value size exceeds"),               # string longer than the input
    (b"\xc3\x83ab", "value size exceeds"),           # item longer than its list
    (b"\xc0\x80", "more than one value"),            # strict: nothing after the value
])
def test_decode_rejects(data, why):
    with pytest.raises(DecodeError, match=why):
        rlpcodec.decode(data)


def test_decode_values():
    assert rlpcodec.decode(b"\x80") == b""
    assert rlpcodec.decode(b"\x00") == b"\x00"
    assert rlpcodec.decode(b"\xc4\x83dog") == [b"dog"]
    assert rlpcodec.decode(b"\xc3\xc2\xc1\xc0") == [[[[]]]]
    assert rlpcodec.decode(b"\xc0\x80", strict=False) == []


@pytest.mark.parametrize("data,value", [
    (b"\x80", 0), (b"\x01", 1), (b"\x7f", 127), (b"\x81\x80", 128), (b"\x82\x04\x00", 1024),
])
def test_uint(data, value):
    assert rlpcodec.uint(rlpcodec.head(data, 0, len(data)), data, 8) == value
    assert rlpcodec.uint_prefix(data, len(data)) == (value, len(data))
    assert rlpcodec.encode_uint(value) == data


@pytest.mark.parametrize("data,why", [
    (b"\x00", "leading zero"),                 # zero is 0x80, never 0x00 (geth: ErrCanonInt)
    (b"\x82\x00\x01", "leading zero"),
    (b"\x81\x05", "non-canonical size"),
    (b"\x89" + b"\x01" * 9, "too long for uint64"),
    (b"\xc0", "expected input string"),
])
def test_uint_rejects(data, why):
    with pytest.raises(DecodeError, match=why):
        rlpcodec.uint_prefix(data, len(data))
    with pytest.raises(DecodeError):
        rlpcodec.uint(rlpcodec.head(data, 0, len(data)), data, 8)


def test_fields_and_raw_keep_the_rest_unread():
    # [1, 2, [garbage inside]]: fields checks the elements' headers, not their insides,
    # like geth's rlp.RawValue, so the raw rest comes back byte-exact.
    data = rlpcodec.encode_list([rlpcodec.encode_uint(1), rlpcodec.encode_uint(2), b"\xc2\x81\x05"])
    items = rlpcodec.fields(rlpcodec.head(data, 0, len(data)), data, 2, True)
    assert [rlpcodec.raw(it, data) for it in items] == [b"\x01", b"\x02", b"\xc2\x81\x05"]
    with pytest.raises(DecodeError, match="too many elements"):
        rlpcodec.fields(rlpcodec.head(data, 0, len(data)), data, 2, False)
    with pytest.raises(DecodeError, match="too few elements"):
        rlpcodec.fields(rlpcodec.head(data, 0, len(data)), data, 4, True)


def test_endpoint_fast_and_general_paths_agree():
    ip4 = bytes([127, 0, 0, 1])
    usual = rlpcodec.encode_list([rlpcodec.encode_bytes(ip4), rlpcodec.encode_uint(30303),
                                  rlpcodec.encode_uint(0)])
    odd = rlpcodec.encode_list([rlpcodec.encode_bytes(b"\x01\x02"), rlpcodec.encode_uint(5),
                                rlpcodec.encode_uint(6)])  # 2-byte IP: general path
    assert rlpcodec.endpoint(rlpcodec.head(usual, 0, len(usual)), usual) == (ip4, 30303, 0)
    assert rlpcodec.endpoint(rlpcodec.head(odd, 0, len(odd)), odd) == (b"\x01\x02", 5, 6)
    big_port = rlpcodec.encode_list([rlpcodec.encode_bytes(ip4), rlpcodec.encode_uint(1 << 16),
                                     rlpcodec.encode_uint(0)])
    with pytest.raises(DecodeError, match="too long for uint16"):
        rlpcodec.endpoint(rlpcodec.head(big_port, 0, len(big_port)), big_port)


def test_encoders():
    assert rlpcodec.encode_bytes(b"") == b"\x80"
    assert rlpcodec.encode_bytes(b"\x7f") == b"\x7f"
    assert rlpcodec.encode_bytes(b"\x80") == b"\x81\x80"
    assert rlpcodec.encode_bytes(bytes(56))[:2] == b"\xb8\x38"
    assert rlpcodec.encode_list([]) == b"\xc0"
    assert rlpcodec.encode_list([b"\x01"], [b"\x02"]) == b"\xc2\x01\x02"
    assert rlpcodec.encode_raw([b"cat", [1, 0]]) == b"\xc7\x83cat\xc2\x01\x80"
    with pytest.raises(ValueError):
        rlpcodec.encode_uint(-1)
    assert rlpcodec.encode_raw(["PING", "", True, False]) == b"\xc8\x84PING\x80\x01\x80"  # as Go's rlp
    with pytest.raises(TypeError):
        rlpcodec.encode_raw(1.5)


def test_one_is_the_whole_input():
    assert rlpcodec.one(b"\x83cat") == (rlpcodec.STRING, 0, 1, 4)
    assert rlpcodec.one(b"\x05") == (rlpcodec.BYTE, 0, 0, 1)
    with pytest.raises(DecodeError, match="more than one value"):
        rlpcodec.one(b"\x83cat\x80")
    with pytest.raises(DecodeError, match="unexpected EOF"):
        rlpcodec.one(b"")


def test_encode_plain_values_and_pyrlp_serializables():
    import rlp
    from rlp.sedes import big_endian_int, binary

    class Hello(rlp.Serializable):
        fields = [("n", big_endian_int), ("name", binary)]

    assert rlpcodec.encode([b"cat", [7]]) == rlp.encode([b"cat", [7]])
    # A Serializable (alone or inside a plain list) goes to pyrlp.
    assert rlpcodec.encode(Hello(5, b"x")) == rlp.encode(Hello(5, b"x"))
    assert rlpcodec.encode([b"a", Hello(5, b"x")]) == rlp.encode([b"a", Hello(5, b"x")])
    hs = ProtoHandshake(5, "geth", [("eth", 63)], 30303, bytes(64), rest=[b"\x01"])
    assert rlpcodec.encode(hs) == rlp.encode(hs) == hs.encode()  # a class that is its own sedes
    with pytest.raises(ValueError):
        rlpcodec.encode(-1)
    # str and bool as pyrlp writes them (UTF-8, 1 and 0), without pyrlp.
    assert rlpcodec.encode(["téxt", True, False]) == rlp.encode(["téxt", True, False])


def test_the_stack_runs_without_importing_pyrlp():
    """pyrlp (with eth_utils and pydantic) costs a process about 24 MiB; nothing but a sedes needs it.

    A fresh interpreter imports every part of the stack and a node's commands,
    brings up a server with discovery v4 and v5, decodes a message and sends one as
    the simulations' ping-pong service does, and checks ``rlp`` was never imported.
    """
    import subprocess
    import sys
    code = (
        "import sys\n"
        "import p2p.server, p2p.discover, p2p.discv5, p2p.enr, p2p.nat, p2p.cmd.p2pnode, p2p.cmd.bootnode\n"
        "import p2p.simulations.adapters.exec, p2p.simulations.examples.ping_pong, p2p.node.node\n"
        "from p2p import crypto, message\n"
        "from p2p.server import Config, Server\n"
        "srv = Server(Config(private_key=crypto.generate_key(), max_peers=1, listen_addr='127.0.0.1:0',\n"
        "                    discovery_v5=True, no_dial=True))\n"
        "assert srv.start() is None\n"
        "srv.stop()\n"
        "assert message.Msg.from_bytes(0, b'\\xc2\\x01\\x02').decode() == [b'\\x01', b'\\x02']\n"
        "import threading\n"
        "a, b = message.msg_pipe()\n"
        "threading.Thread(target=message.send, args=(a, 1, 'PING'), daemon=True).start()\n"  # as ping-pong sends
        "assert b.read_msg().decode() == b'PING'\n"
        "from p2p.peer import ProtoHandshake\n"
        "hs = ProtoHandshake(5, 'x', [('eth', 63)], 0, bytes(64))\n"
        "threading.Thread(target=message.send, args=(a, 0, hs), daemon=True).start()\n"  # as rlpx sends the hello
        "assert b.read_msg().decode(ProtoHandshake) == hs\n"
        "print('rlp' in sys.modules, 'pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"], out.stdout
