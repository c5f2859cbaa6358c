"""Traffic policies: which variant answers a request. One policy per module."""

from modelyard.serving.routing.base import Selection, TrafficPolicy, WeightedChoice
from modelyard.serving.routing.sticky import StickyByKey
from modelyard.serving.routing.weighted import WeightedRandom

__all__ = ["Selection", "StickyByKey", "TrafficPolicy", "WeightedChoice", "WeightedRandom"]
