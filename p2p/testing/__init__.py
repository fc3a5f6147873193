"""Scripted protocol tests: a pivot node and mock peers (geth's p2p/testing)."""
