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


def test_longest_ordered_subsequence():
    assert geth_map._longest_ordered([]) == set()
    assert geth_map._longest_ordered([1, 2, 3]) == {0, 1, 2}
    # 10 is out of place: the longest run in order is the other four (ties count as in order)
    assert geth_map._longest_ordered([1, 10, 2, 2, 3]) == {0, 2, 3, 4}
    assert len(geth_map._longest_ordered([5, 4, 3, 2, 1])) == 1


def _fake_result():
    # Go order a, b, c, d; in Python b comes after d.
    py = "p2p/fake.py"
    lines = {"a": 10, "b": 50, "c": 20, "d": 30}
    return [("p2p/fake.go", i + 1, q, (py, q, lines[q]), None) for i, q in enumerate("abcd")]


def test_go_order_finds_and_excuses_rows_out_of_order():
    (m,) = geth_map.go_order(_fake_result(), reasons=[])
    assert (m.twins, m.in_order, [r[1] for r in m.out_of_order]) == (4, 3, ["b"])
    assert m.share == 0.75
    (m,) = geth_map.go_order(_fake_result(), reasons=[("p2p/fake.go", "b", "kept with its caller")])
    assert (m.in_order, m.out_of_order, m.excused, m.share) == (3, [], [("b", "kept with its caller")], 1.0)


def test_every_module_follows_go_order_or_lists_a_reason():
    bad = [
        "%s:%d %s (python %s:%d)" % (m.go_file, go_line, qual, py, py_line)
        for m in geth_map.go_order(geth_map.build())
        for go_line, qual, py, py_line in m.out_of_order
    ]
    assert not bad, ("twins out of Go's order (reorder them, or give the reason in "
                     "tools/geth_order_reasons.tsv):\n" + "\n".join(bad))


def test_every_order_reason_excuses_a_twin_out_of_order():
    # A reason for a row that is in Go's order now is stale: the list says only what is true.
    stale = ["%s\t%s" % (f, q) for f, q, _ in geth_map.stale_order_reasons(geth_map.build())]
    assert not stale, ("order reasons that excuse nothing (delete them: "
                       "python tools/geth_map.py --prune-stale):\n" + "\n".join(stale))
