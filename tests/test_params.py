from p2p import params


def test_mainnet_bootnodes_parse():
    nodes = params.mainnet_bootnodes()
    assert len(nodes) == len(params.MAINNET_BOOTNODES) == 6
    for n, url in zip(nodes, params.MAINNET_BOOTNODES):
        assert not n.incomplete()
        assert n.tcp == n.udp == 30303
        n.id.pubkey()  # every ID is a valid curve point
        assert str(n) == url
