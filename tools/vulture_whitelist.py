"""Names vulture (``make deadcode``) reports that are used in ways it cannot see.

Each line names the use; vulture reads this file as code that uses the names.
"""
# ruff: noqa
from p2p import event

event.ErrQueue._qsize  # queue.Queue hook, called by Queue.get/qsize/empty
event.ErrQueue._get    # queue.Queue hook, called by Queue.get
