"""A service container with a JSON-RPC API, as much of geth's node package as simulations need."""
