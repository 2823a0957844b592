"""Streaming analytics on wsmux events: operators fed events, emitting typed events.

Every analytic is an :class:`Operator` (sans-I/O: ``update(event)`` returns
output events, ``reset()`` forgets, ``flush()`` closes what is open at the end
of data). :func:`attach` feeds operators from a :class:`~wsmux.Stream` and
returns a stream of their outputs; :meth:`wsmux.Multiplexer.analyze`
subscribes and attaches in one call. Outputs derive from
:class:`AnalyticEvent` and convert to dicts/JSON like every wsmux event.
Book-fed operators emit :class:`Suspended` / :class:`Resumed` when their
input book becomes unusable / usable again.

Families: bars (:class:`TimeBars`, :class:`TickBars`, :class:`VolumeBars`,
:class:`DollarBars`), VWAP and volume profile (:class:`RollingVwap`,
:class:`SessionVwap`, :class:`VolumeProfile`), trade classification
(:class:`TradeClassifier`); :class:`ExactSum` keeps their sums exact.
Book and order-flow features (:mod:`wsmux.analytics.features`), cross-venue
signals (:mod:`wsmux.analytics.cross_venue`), patterns
(:mod:`wsmux.analytics.patterns`) and the online statistics they are built
from (:mod:`wsmux.analytics.stats`) are re-exported here too.
"""

from __future__ import annotations

from wsmux.analytics._bars import Bar, DollarBars, TickBars, TimeBars, VolumeBars, format_interval, parse_interval
from wsmux.analytics._classify import ClassificationSummary, ClassifiedTrade, TradeClassifier
from wsmux.analytics._exact import ExactSum
from wsmux.analytics._operator import (
    NOTHING,
    AnalyticEvent,
    BookValidity,
    Operator,
    PerInstrument,
    Resumed,
    Suspended,
    attach,
)
from wsmux.analytics._vwap import Profile, RollingVwap, SessionVwap, VolumeProfile, Vwap, value_area
from wsmux.analytics.cross_venue import (
    Correlation,
    CrossVenueSpread,
    LeadLag,
    LeadLagEstimate,
    Opportunity,
    ReturnCorrelation,
)
from wsmux.analytics.features import (
    BookImbalance,
    Imbalance,
    MidVolatility,
    OrderFlow,
    OrderFlowImbalance,
    SpreadDepth,
    SpreadDepthStats,
    Volatility,
    WeightedMid,
    WeightedMidPrice,
)
from wsmux.analytics.patterns import FleetingWall, FleetingWalls, HiddenFill, HiddenLiquidity, QuoteBurst, QuoteStuffing
from wsmux.analytics.stats import EWMA, GridSampler, QuantileSketch, RealizedVolatility, RollingMinMax, RollingWindow
from wsmux.convert import register_event

register_event(Suspended, "suspended")
register_event(Resumed, "resumed")
register_event(Bar, "bar")
register_event(Vwap, "vwap")
register_event(Profile, "volume_profile")
register_event(ClassifiedTrade, "classified_trade")
register_event(ClassificationSummary, "classification_summary")

__all__ = [
    "Correlation",
    "CrossVenueSpread",
    "LeadLag",
    "LeadLagEstimate",
    "Opportunity",
    "ReturnCorrelation",
    "BookImbalance",
    "Imbalance",
    "MidVolatility",
    "OrderFlow",
    "OrderFlowImbalance",
    "SpreadDepth",
    "SpreadDepthStats",
    "Volatility",
    "WeightedMid",
    "WeightedMidPrice",
    "FleetingWall",
    "FleetingWalls",
    "HiddenFill",
    "HiddenLiquidity",
    "QuoteBurst",
    "QuoteStuffing",
    "EWMA",
    "GridSampler",
    "QuantileSketch",
    "RealizedVolatility",
    "RollingMinMax",
    "RollingWindow",
    "NOTHING",
    "AnalyticEvent",
    "Bar",
    "BookValidity",
    "ClassificationSummary",
    "ClassifiedTrade",
    "DollarBars",
    "ExactSum",
    "Operator",
    "PerInstrument",
    "Profile",
    "Resumed",
    "RollingVwap",
    "SessionVwap",
    "Suspended",
    "TickBars",
    "TimeBars",
    "TradeClassifier",
    "VolumeBars",
    "VolumeProfile",
    "Vwap",
    "attach",
    "format_interval",
    "parse_interval",
    "value_area",
]
