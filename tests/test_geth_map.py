"""Every Go function of the ported geth files has a Python twin or a recorded reason."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))

import geth_map  # noqa: E402


def test_snake_case_conversion():
    assert geth_map.snake("ReadRandomNodes") == "read_random_nodes"
    assert geth_map.snake("newRLPX") == "new_rlpx"
    assert geth_map.snake("TestTable_pingReplace") == "test_table_ping_replace"
    assert geth_map.snake("IPs") == "ips"
    assert geth_map.snake("doEncHandshake") == "do_enc_handshake"


def test_every_go_function_has_a_twin_or_a_reason():
    missing = [
        "%s:%d %s" % (go_file, line, qual)
        for go_file, line, qual, found, reason in geth_map.build()
        if not found and not reason
    ]
    assert not missing, "Go functions with no Python twin and no reason in tools/geth_map_reasons.tsv:\n" + "\n".join(missing)


def test_architecture_links_name_real_functions():
    for doc in geth_map.LINKED_DOCS:
        broken = [(link, why) for link, why in geth_map.check_links(doc) if not why.startswith("stale")]
        assert not broken, "broken code links in %s: %s" % (doc, broken)
