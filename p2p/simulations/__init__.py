"""Network simulations (geth's p2p/simulations): nodes run by an adapter, driven and watched."""
