"""Node adapters of the simulations: in-process ("sim") and one OS process per node ("exec")."""
