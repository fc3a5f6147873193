"""gethp2p: go-ethereum's p2p stack (v1.8.16) ported to Python, one module per Go file."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("gethp2p")
except _metadata.PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"


def version_string(prog: str) -> str:
    """What a command prints for ``--version``: ``<prog> (gethp2p <version>)``."""
    return "%s (gethp2p %s)" % (prog, __version__)
