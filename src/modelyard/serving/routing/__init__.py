"""Traffic policies: which variant answers a request, and which shadows get a copy. One policy
per module."""

from modelyard.serving.routing.base import Selection, TrafficPolicy, WeightedChoice
from modelyard.serving.routing.shadow import ShadowSampling
from modelyard.serving.routing.sticky import StickyByKey
from modelyard.serving.routing.weighted import WeightedRandom

__all__ = [
    "Selection",
    "ShadowSampling",
    "StickyByKey",
    "TrafficPolicy",
    "WeightedChoice",
    "WeightedRandom",
]
