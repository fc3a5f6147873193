"""NodeConfig JSON as geth's types.go marshals it, and the service registry."""

import json

import pytest

from p2p import crypto
from p2p.simulations.adapters import types


def test_node_config_json_round_trip(crypto_backend):
    conf = types.random_node_config()
    conf.services = ["ping-pong"]
    d = conf.marshal_json()
    assert set(d) == {"id", "private_key", "name", "services", "enable_msg_events", "port"}
    assert d["private_key"] == crypto.from_ecdsa(conf.private_key).hex()
    assert d["name"] == "node_" + conf.id.hex()
    back = types.NodeConfig.unmarshal_json(json.dumps(d))
    assert back.id == conf.id
    assert crypto.from_ecdsa(back.private_key) == crypto.from_ecdsa(conf.private_key)
    assert (back.name, back.services, back.port, back.enable_msg_events) == (
        conf.name, ["ping-pong"], conf.port, True)


def test_node_config_json_empty_and_null_fields():
    conf = types.NodeConfig.unmarshal_json('{"name": "x", "services": null, "private_key": ""}')
    assert conf.name == "x" and conf.services == [] and conf.private_key is None
    assert types.NodeConfig().marshal_json()["services"] is None  # Go's nil slice


@pytest.mark.parametrize("bad", [
    "[]", '{"id": "zz"}', '{"id": "abcd"}', '{"private_key": "zz"}', '{"private_key": "00"}',
    '{"port": 70000}', '{"port": "1"}', '{"services": "a"}', '{"name": 5}', '{"enable_msg_events": 1}', "{",
])
def test_node_config_json_rejects(bad):
    with pytest.raises(ValueError):
        types.NodeConfig.unmarshal_json(bad)


def test_register_services_rejects_duplicates(monkeypatch):
    monkeypatch.setattr(types, "serviceFuncs", {})
    types.register_services({"a": lambda ctx: None})
    with pytest.raises(ValueError, match="already exists"):
        types.register_services({"a": lambda ctx: None})
    assert list(types.serviceFuncs) == ["a"]


def test_assign_tcp_port_is_loopback_port():
    port = types.assign_tcp_port()
    assert 0 < port < 65536


def test_node_config_json_is_geths_layout():
    # geth's nodeConfigJSON field order and names, as encoding/json writes them
    key = crypto.to_ecdsa(bytes(31) + b"\x01")
    from p2p.discover.node import pubkey_id

    conf = types.NodeConfig(id=pubkey_id(key.public_key), private_key=key, name="node01",
                            services=["ping-pong"], enable_msg_events=True, port=30303)
    want = ('{"id":"%s","private_key":"%s","name":"node01","services":["ping-pong"],'
            '"enable_msg_events":true,"port":30303}') % (conf.id.hex(), "00" * 31 + "01")
    assert json.dumps(conf.marshal_json(), separators=(",", ":")) == want
