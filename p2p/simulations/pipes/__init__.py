"""Connected socket pairs for simulated connections (geth's p2p/simulations/pipes)."""

from p2p.simulations.pipes.pipes import net_pipe, tcp_pipe  # noqa: F401
