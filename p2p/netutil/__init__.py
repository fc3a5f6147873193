"""Network utilities (geth's p2p/netutil): IP lists and classes, socket error checks."""

from p2p.netutil.error import *  # noqa: F401,F403
from p2p.netutil.net import *  # noqa: F401,F403
