"""A send that fails on a pushed connection (the default transport drives the
Feed from the socket's callbacks and carries out the Feed's actions in a task
of their own) ends the connection with the reason, as the pull loop's does:
it never leaves an exception nobody retrieves, nor a connection that stays up
with a resubscribe that never went out."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from wsmux import Disconnected, Multiplexer, Resynced
from wsmux import book as book_sub
from wsmux.connection import Connection
from wsmux.errors import ConnectionClosed
from wsmux.testing import MockDeribit, collect_until

SYMBOL = "BTC-USD-PERP"


async def test_a_failed_send_of_a_resync_ends_the_connection_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    unhandled: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    send_all = Connection._send_all

    async def failing(self: Connection, messages: Any) -> None:
        raise ConnectionClosed("the socket refused the message (test)")

    async with MockDeribit([SYMBOL]) as mock, Multiplexer(endpoints={"deribit": mock.endpoint}) as mux:
        stream = mux.subscribe(*book_sub("deribit", SYMBOL))
        await collect_until(stream, lambda e: isinstance(e, Resynced))
        monkeypatch.setattr(Connection, "_send_all", failing)
        mock.faults.skip_seq = 1  # a lost change: the book breaks and resubscribes, a Send
        await mock.publish(5)
        seen = await collect_until(stream, lambda e: isinstance(e, Disconnected))
        (disconnected,) = [e for e in seen if isinstance(e, Disconnected)]
        assert disconnected.reason == "ConnectionClosed: a send failed: the socket refused the message (test)"
        assert disconnected.reconnecting
        monkeypatch.setattr(Connection, "_send_all", send_all)
        await collect_until(stream, lambda e: isinstance(e, Resynced))  # reconnected and in sync again
        await stream.aclose()
    gc.collect()  # a task whose exception was never retrieved reports it when collected
    assert unhandled == []
