"""Logging in the style of geth's ``log`` package, on top of the standard ``logging``.

geth logs a message followed by key/value context::

    log.Debug("Adding p2p peer", "name", name, "addr", addr)

The twin here is::

    log = p2p.log.get_logger("p2p")
    log.debug("Adding p2p peer", name=name, addr=addr)

which renders as ``Adding p2p peer                  name=... addr=...``.
Context is formatted only when the level is enabled, so trace calls on hot
paths cost one level check. ``Logger.new(**ctx)`` returns a child that adds
``ctx`` to every line (geth's ``log.New``).

Levels follow geth (crit, error, warn, info, debug, trace); TRACE is a level
below DEBUG. ``set_verbosity(n)`` maps geth's ``--verbosity 0..5`` onto them.
"""

from __future__ import annotations

import logging
import sys

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# geth's verbosity numbers: 0=crit 1=error 2=warn 3=info 4=debug 5=trace
VERBOSITY_LEVELS = {
    0: logging.CRITICAL,
    1: logging.ERROR,
    2: logging.WARNING,
    3: logging.INFO,
    4: logging.DEBUG,
    5: TRACE,
}


def _fmt_value(v):
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).hex()
    s = str(v)
    if s == "" or any(c in s for c in " =\"\n"):
        return '"%s"' % s.replace('"', '\\"').replace("\n", "\\n")
    return s


class _Record:
    """Defers formatting of the key/value context until a handler renders it."""

    __slots__ = ("msg", "ctx")

    def __init__(self, msg, ctx):
        self.msg = msg
        self.ctx = ctx

    def __str__(self):
        if not self.ctx:
            return self.msg
        kv = " ".join("%s=%s" % (k, _fmt_value(v)) for k, v in self.ctx.items())
        return "%-40s %s" % (self.msg, kv)


class Logger:
    """A logger with geth's level names and key/value context."""

    __slots__ = ("_logger", "_ctx")

    def __init__(self, logger: logging.Logger, ctx=None):
        self._logger = logger
        self._ctx = ctx or {}

    @property
    def name(self):
        return self._logger.name

    def new(self, /, **ctx) -> "Logger":
        merged = dict(self._ctx)
        merged.update(ctx)
        return Logger(self._logger, merged)

    def is_enabled_for(self, level: int) -> bool:
        return self._logger.isEnabledFor(level)

    def _log(self, level, msg, ctx, exc_info=None):
        if self._logger.isEnabledFor(level):
            if self._ctx:
                full = dict(self._ctx)
                full.update(ctx)
            else:
                full = ctx
            self._logger.log(level, _Record(msg, full), stacklevel=3, exc_info=exc_info)

    def trace(self, msg, /, **ctx):
        self._log(TRACE, msg, ctx)

    def debug(self, msg, /, **ctx):
        self._log(logging.DEBUG, msg, ctx)

    def info(self, msg, /, **ctx):
        self._log(logging.INFO, msg, ctx)

    def warn(self, msg, /, **ctx):
        self._log(logging.WARNING, msg, ctx)

    warning = warn

    def error(self, msg, /, exc_info=None, **ctx):
        """``exc_info`` (an exception) adds its traceback: the way to report a bug."""
        self._log(logging.ERROR, msg, ctx, exc_info)

    def crit(self, msg, /, **ctx):
        self._log(logging.CRITICAL, msg, ctx)


def get_logger(name: str, **ctx) -> Logger:
    return Logger(logging.getLogger(name), ctx)


class _Handler(logging.StreamHandler):
    # The handler set_verbosity installs (a class of its own, so a second call replaces it).
    pass


def set_verbosity(verbosity: int, stream=None) -> None:
    """Send p2p logs to ``stream`` (stderr) at geth's verbosity ``0..5``."""
    if verbosity not in VERBOSITY_LEVELS:
        raise ValueError("verbosity must be 0..5, got %r" % (verbosity,))
    root = logging.getLogger("p2p")
    root.setLevel(VERBOSITY_LEVELS[verbosity])
    for h in list(root.handlers):
        if isinstance(h, _Handler):
            root.removeHandler(h)
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)-5.5s [%(asctime)s.%(msecs)03d] %(message)s",
                                           "%m-%d|%H:%M:%S"))
    root.addHandler(handler)
    root.propagate = False
