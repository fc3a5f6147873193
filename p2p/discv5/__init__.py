"""Discovery v5, geth 1.8's experimental topic discovery (port of geth's p2p/discv5).

One module per Go file of geth 1.8.16's ``p2p/discv5``, self-contained as in geth: its
own :class:`~p2p.discv5.node.Node`, node database and table, separate from
:mod:`p2p.discover` (v4).

- ``node``: Node, NodeID, node URLs, distances.
- ``database``: the LevelDB node database (v5's own, same key layout as geth's).
- ``table``: the Kademlia buckets.
- ``udp``: the wire (``"temporary discovery v5"`` prefix, packet structs, signing,
  decoding) and the UDP transport the ``Network`` sends through.
- ``net``: the ``Network``, its per-node state machine and its loop.
- ``ticket``, ``topic``: topic registration tickets and the topic table.
- ``ntp``: the clock drift check; ``metrics``: the traffic meters;
  ``nodeevent_string``: the ``nodeEvent`` names (and, so that ``udp`` and ``net`` share
  them without an import cycle, the ``nodeEvent`` values net.go declares).
"""
