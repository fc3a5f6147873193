"""Typed devp2p sub-protocols: Spec, Peer (geth's p2p/protocols)."""
