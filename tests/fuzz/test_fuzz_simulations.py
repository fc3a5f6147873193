"""Fuzzing of the simulations' decoders that take bytes from a client or a peer.

* ``p2p.node.rpc.Server`` request handling (what a WebSocket client sends):
  never raises; the answer is a JSON-RPC 2.0 object (or a list of them, or
  None for notifications) that serializes to JSON.
* ``NodeConfig.unmarshal_json`` (what ``POST /nodes`` gets): a NodeConfig or
  ``ValueError``, nothing else.
* ``protocols.Peer.handle_incoming`` (a typed sub-protocol message from a
  peer): the handler is called with a decoded message, or the error is a
  ``protocols.Error`` or the ``PeerError`` of a malformed RLP wrapper.
"""

import json

import rlp
from hypothesis import given, strategies as st
from rlp.sedes import big_endian_int, text

from p2p.message import Msg
from p2p.node import rpc
from p2p.peer_error import PeerError
from p2p.protocols.protocol import Error, Peer, Spec
from p2p.simulations.adapters.types import NodeConfig

from tests.fuzz import fuzz_settings, mutated


class _Svc:
    def echo(self, x=None):
        return x

    def two(self, a, b):
        return [a, b]


_SERVER = rpc.Server()
_SERVER.register_name("t", _Svc())


class _NullCodec:
    def write(self, msg):
        json.dumps(msg)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

requests = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", None])},
    optional={
        "id": json_values,
        "method": st.sampled_from(["t_echo", "t_two", "t_nope", "t_subscribe", "t_unsubscribe", "x", ""]) | st.text(),
        "params": json_values,
    },
)


def _check_answer(answer):
    if answer is None:
        return
    json.dumps(answer)
    for a in answer if isinstance(answer, list) else [answer]:
        assert a["jsonrpc"] == "2.0"
        assert ("result" in a) != ("error" in a)


@fuzz_settings()
@given(st.one_of(st.text(max_size=200), requests.map(json.dumps),
                 st.lists(requests, max_size=4).map(json.dumps), json_values.map(json.dumps)))
def test_fuzz_rpc_request(raw):
    notifier = rpc.Notifier(_NullCodec(), None)
    _check_answer(_SERVER._handle_raw(raw, notifier))
    notifier.close()


_CONFIG = json.dumps(NodeConfig(name="n", services=["ping-pong"], port=30303).marshal_json())


@fuzz_settings()
@given(st.one_of(json_values.map(json.dumps), mutated(_CONFIG.encode()).map(lambda b: b.decode("latin-1")),
                 st.fixed_dictionaries({}, optional={
                     "id": json_values | st.text(alphabet="0123456789abcdef", min_size=128, max_size=128),
                     "private_key": json_values | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
                     "name": json_values, "services": json_values, "port": json_values,
                     "enable_msg_events": json_values}).map(json.dumps)))
def test_fuzz_node_config_json(raw):
    try:
        conf = NodeConfig.unmarshal_json(raw)
    except ValueError:
        return
    assert isinstance(conf.services, list) and 0 <= conf.port <= 0xFFFF


class _Hs(rlp.Serializable):
    fields = [("Version", big_endian_int), ("NetworkID", text)]


_SPEC = Spec(name="f", version=1, max_msg_size=1024, messages=[_Hs])


class _OneMsg:
    def __init__(self, code, data):
        self.msg = Msg.from_bytes(code, data)

    def read_msg(self):
        return self.msg


_GOOD = rlp.encode([b"", 6, rlp.encode(_Hs(1, "x"))])


@fuzz_settings()
@given(st.integers(0, 3), st.one_of(st.binary(max_size=64), mutated(_GOOD)))
def test_fuzz_protocols_handle_incoming(code, data):
    got = []
    peer = Peer(None, _OneMsg(code, data), _SPEC)
    try:
        peer.handle_incoming(got.append)
    except (Error, PeerError):
        assert not got
        return
    assert len(got) == 1 and isinstance(got[0], _Hs)
