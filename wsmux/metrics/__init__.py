"""Metrics: latency histograms, clock offsets, rates, flow anomalies, exporters.

A :class:`~wsmux.Multiplexer` keeps a :class:`MetricsRegistry` (``mux.metrics``;
off with ``Multiplexer(metrics=False)``). Most counters are the ones the feeds,
connections, books and streams keep anyway, read at scrape time; the registry
adds sampled latency histograms (:class:`VenueLatency`), the clock offset of
each venue (:class:`ClockOffset`), per-second rate rings and per-connection
flow baselines (:class:`FlowBaseline`) that report :class:`~wsmux.Anomaly`
events and adapt the stale-data timer. Everything is read through
:meth:`wsmux.Multiplexer.health` (``health.venue_health``) and exported by
:meth:`wsmux.Multiplexer.serve_metrics` (extra ``wsmux[prometheus]``).

The building blocks (:class:`LatencyHistogram`, :class:`Ewma`) are plain,
clock-free values that other parts of wsmux reuse.
"""

from __future__ import annotations

from wsmux.metrics._anomaly import ChannelFlow, FlowBaseline, FlowState
from wsmux.metrics._ewma import Ewma, alpha_for_half_life
from wsmux.metrics._hist import LatencyHistogram, bucket_bounds, bucket_index
from wsmux.metrics._latency import ClockOffset, VenueLatency
from wsmux.metrics._registry import MetricsRegistry, VenueMetrics

__all__ = [
    "ChannelFlow",
    "ClockOffset",
    "Ewma",
    "FlowBaseline",
    "FlowState",
    "LatencyHistogram",
    "MetricsRegistry",
    "VenueLatency",
    "VenueMetrics",
    "alpha_for_half_life",
    "bucket_bounds",
    "bucket_index",
]
