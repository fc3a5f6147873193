"""Example services for simulations (geth's p2p/simulations/examples)."""
