"""Traffic meters of discovery v5 (port of geth's p2p/discv5/metrics.go).

Counted only when :data:`p2p.metrics.Enabled`, as geth's meters are.
"""

from p2p import metrics

ingressTrafficMeter = metrics.new_registered_meter("discv5/InboundTraffic")
egressTrafficMeter = metrics.new_registered_meter("discv5/OutboundTraffic")
