"""Metrics: latency histograms, streaming baselines, the registry and exporters.

The building blocks (:class:`LatencyHistogram`, :class:`Ewma`) are plain,
clock-free values that other parts of wsmux reuse.
"""

from __future__ import annotations

from wsmux.metrics._ewma import Ewma, alpha_for_half_life
from wsmux.metrics._hist import LatencyHistogram, bucket_bounds, bucket_index

__all__ = ["Ewma", "LatencyHistogram", "alpha_for_half_life", "bucket_bounds", "bucket_index"]
