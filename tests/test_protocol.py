"""Tests for p2p/protocol.py and protocol matching in p2p/peer.py."""

import rlp

from p2p.peer import baseProtocolLength, count_matching_protocols, match_protocols
from p2p.protocol import Cap, Protocol, caps_by_name_and_version


def test_cap_string_and_rlp():
    c = Cap("eth", 63)
    assert str(c) == "eth/63"
    assert c.rlp_data() == ["eth", 63]
    assert rlp.encode(c) == rlp.encode([b"eth", 63])
    assert Cap.from_rlp(rlp.decode(rlp.encode(c))) == c


def test_cap_ordering_by_name_then_version():
    caps = [Cap("les", 1), Cap("eth", 63), Cap("eth", 62), Cap("bzz", 9)]
    assert caps_by_name_and_version(caps) == [Cap("bzz", 9), Cap("eth", 62), Cap("eth", 63), Cap("les", 1)]
    assert caps[0] == Cap("bzz", 9)  # sorted in place, like sort.Sort


def test_cap_from_rlp_rejects_garbage():
    for bad in (b"eth", [b"eth"], [[b"eth"], b"\x01"], [b"eth", [b"\x01"]]):
        try:
            Cap.from_rlp(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (bad,))


def test_protocol_cap():
    p = Protocol(name="shh", version=5, length=2)
    assert p.cap() == Cap("shh", 5)
    assert p.node_info is None and p.peer_info is None


def test_count_matching_protocols():
    protos = [Protocol("eth", 62, 8), Protocol("eth", 63, 17), Protocol("les", 2, 21)]
    assert count_matching_protocols(protos, []) == 0
    assert count_matching_protocols(protos, [Cap("eth", 63)]) == 1
    assert count_matching_protocols(protos, [Cap("eth", 62), Cap("eth", 63), Cap("les", 1)]) == 2
    assert count_matching_protocols(protos, [Cap("eth", 63), Cap("les", 2), Cap("bzz", 1)]) == 2


def test_match_protocols_offsets_follow_name_order():
    protos = [Protocol("les", 2, 21), Protocol("eth", 63, 17), Protocol("bzz", 1, 5)]
    caps = [Cap("les", 2), Cap("eth", 63), Cap("bzz", 1)]
    result = match_protocols(protos, caps, None)
    assert {n: (p.offset, p.length) for n, p in result.items()} == {
        "bzz": (baseProtocolLength, 5),
        "eth": (baseProtocolLength + 5, 17),
        "les": (baseProtocolLength + 22, 21),
    }


def test_match_protocols_highest_shared_version_wins():
    protos = [Protocol("eth", 62, 8), Protocol("eth", 63, 17), Protocol("les", 1, 15)]
    caps = [Cap("eth", 62), Cap("eth", 63), Cap("eth", 64), Cap("les", 1)]
    result = match_protocols(protos, caps, None)
    assert result["eth"].version == 63
    assert result["eth"].offset == baseProtocolLength
    # les comes after eth/63's 17 codes, not eth/62's 8
    assert result["les"].offset == baseProtocolLength + 17


def test_match_protocols_keeps_writer():
    sentinel = object()
    result = match_protocols([Protocol("a", 1, 1)], [Cap("a", 1)], sentinel)
    assert result["a"].w is sentinel
    assert result["a"].protocol.name == "a"
