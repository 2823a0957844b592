"""Analytics on the stream: sans-I/O operators fed wsmux events.

Submodules: :mod:`wsmux.analytics.stats` (online statistics building blocks).
"""

__all__: list[str] = []
