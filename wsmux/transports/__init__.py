"""Optional WebSocket transports for :class:`wsmux.Multiplexer`.

The default transport is :class:`wsmux.connection.WebsocketsTransport` (the
``websockets`` library). :mod:`wsmux.transports.picows` offers
:class:`~wsmux.transports.picows.PicowsTransport`, built on the Cython
``picows`` client, installed with the ``wsmux[fast]`` extra::

    from wsmux.transports.picows import PicowsTransport

    async with Multiplexer(transport=PicowsTransport()) as mux:
        ...

Transports are imported on use so that ``import wsmux`` never needs the
optional packages.
"""

from __future__ import annotations

__all__: list[str] = []
