"""The demo network converges, chats, draws its pictures and stops every thread."""

import io

from p2p.cmd import demo


def test_demo_small_network_converges_and_chats(tmp_path):
    out = io.StringIO()
    plots = True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plots = False
    rc = demo.run(n_nodes=6, timeout=30, out_dir=str(tmp_path), out=out, max_peers=5, plots=plots)
    text = out.getvalue()
    assert rc == 0, text
    assert "demo ok: 6 nodes converged" in text
    assert "all threads stopped" in text
    chat = [l for l in text.splitlines() if l.startswith("chat:")][0]
    sent, got = chat.split(" to ")[1].split(" peers, ")
    assert int(sent) >= 1 and got.startswith(sent + " received")
    if plots:
        assert (tmp_path / "table.png").stat().st_size > 1000
        assert (tmp_path / "peers.png").stat().st_size > 1000


def test_demo_rejects_one_node():
    out = io.StringIO()
    assert demo.run(n_nodes=1, out=out, plots=False) == 2
    assert "at least 2 nodes" in out.getvalue()


def test_demo_v5_nodes_find_the_topic(tmp_path):
    """--v5: every searcher finds all registrants but one, the picture is drawn, no thread is left."""
    out = io.StringIO()
    plots = True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plots = False
    rc = demo.run_v5(n_nodes=8, registrants=3, timeout=150, out_dir=str(tmp_path), out=out, plots=plots)
    text = out.getvalue()
    assert rc == 0, text
    assert "demo v5 ok: 8 nodes, every searcher found 2 of 3 registrants" in text
    assert "all threads stopped" in text
    if plots:
        assert (tmp_path / "topic.png").stat().st_size > 1000


def test_demo_v5_rejects_bad_sizes():
    out = io.StringIO()
    assert demo.run_v5(n_nodes=4, registrants=4, out=out, plots=False) == 2
