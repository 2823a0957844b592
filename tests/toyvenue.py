"""A minimal venue used to test the runtime independently of real venues.

Protocol (JSON text frames):
  client -> {"op": "sub"|"unsub", "topics": ["book:BTC-USD", "trades:BTC-USD"]}
  server -> {"t": "ack"} | {"t": "book", "s": "BTC-USD", "seq": n, "snap": bool, "b": [[p, s]], "a": [[p, s]]}
            {"t": "trade", "s": "BTC-USD", "id": n, "p": "1.0", "q": "2.0", "side": "buy"}
  book rule: stream snapshot on subscribe, then seq +1 per update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import orjson

from wsmux import (
    Adapter,
    BookSnapshot,
    BookUpdate,
    Channel,
    Event,
    MalformedMessage,
    Side,
    Subscription,
    Trade,
)
from wsmux.adapter import Heartbeat, Limits, Outgoing
from wsmux.book import Continuity, SnapshotSource, SyncRule
from wsmux.testing import Change, MockConnection, MockExchange

_CH = {Channel.BOOK: "book", Channel.TRADES: "trades"}


class ToyAdapter(Adapter):
    venue = "toy"
    channels = frozenset({Channel.BOOK, Channel.TRADES})
    default_url = "ws://127.0.0.1:9/"
    limits: ClassVar[Limits] = Limits(streams_per_connection=3, messages_per_second=1000)
    heartbeat: ClassVar[Heartbeat] = Heartbeat(ping_message=None, ws_ping_interval=None, silence_timeout=60)

    def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return [orjson.dumps({"op": "sub", "topics": [f"{_CH[s.channel]}:{s.symbol}" for s in subscriptions]}).decode()]

    def unsubscribe(self, subscriptions: Sequence[Subscription]) -> list[Outgoing]:
        return [
            orjson.dumps({"op": "unsub", "topics": [f"{_CH[s.channel]}:{s.symbol}" for s in subscriptions]}).decode()
        ]

    def to_native(self, symbol: str, channel: Channel = Channel.TRADES) -> str:
        return symbol

    def book_rule(self, symbol: str) -> SyncRule:
        return SyncRule(SnapshotSource.STREAM, Continuity.SEQUENCE)

    def parse(self, frame: bytes | str, recv_ns: int) -> list[Event]:
        try:
            msg = orjson.loads(frame)
            t = msg["t"]
            if t == "book":
                bids = tuple((float(p), float(q)) for p, q in msg["b"])
                asks = tuple((float(p), float(q)) for p, q in msg["a"])
                if msg["snap"]:
                    return [BookSnapshot(self.venue, msg["s"], bids, asks, None, recv_ns, msg["seq"])]
                return [BookUpdate(self.venue, msg["s"], bids, asks, None, recv_ns, msg["seq"])]
            if t == "trade":
                side = Side.BUY if msg["side"] == "buy" else Side.SELL
                return [
                    Trade(self.venue, msg["s"], float(msg["p"]), float(msg["q"]), side, str(msg["id"]), None, recv_ns)
                ]
            if t == "ack":
                return []
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"bad toy message: {exc}", frame) from exc
        raise MalformedMessage("unknown message type", frame)


class MockToy(MockExchange):
    venue = "toy"

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        msg = orjson.loads(message)
        topics = msg["topics"]
        if msg["op"] == "sub":
            await conn.send('{"t":"ack"}')
            if self.faults.reject_subscriptions:  # acknowledges, then never sends data
                return
            for topic in topics:
                conn.topics.add(topic)
                kind, symbol = topic.split(":")
                if kind == "book":
                    await conn.send(self.snapshot(conn, symbol))
        else:
            conn.topics.difference_update(topics)

    def snapshot(self, conn: MockConnection, symbol: str) -> str:
        m = self.markets[symbol]
        seq = conn.state.setdefault("seq", {}).setdefault(symbol, 1000)
        bids = [[m.price_text(p), m.size_text(s)] for p, s in sorted(m.bids.items(), reverse=True)]
        asks = [[m.price_text(p), m.size_text(s)] for p, s in sorted(m.asks.items())]
        return orjson.dumps({"t": "book", "s": symbol, "seq": seq, "snap": True, "b": bids, "a": asks}).decode()

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        out: list[str | bytes] = []
        m = self.markets[symbol]
        if f"book:{symbol}" in conn.topics and (change.bids or change.asks):
            seqs = conn.state.setdefault("seq", {})
            seqs[symbol] = seqs.get(symbol, 1000) + 1
            seq = seqs[symbol]
            if self.faults.take("skip_seq"):
                seq += 1
                seqs[symbol] = seq
            out.append(
                orjson.dumps(
                    {
                        "t": "book",
                        "s": symbol,
                        "seq": seq,
                        "snap": False,
                        "b": [[m.price_text(p), m.size_text(s)] for p, s in change.bids],
                        "a": [[m.price_text(p), m.size_text(s)] for p, s in change.asks],
                    }
                ).decode()
            )
        if change.trade is not None and f"trades:{symbol}" in conn.topics:
            tr = change.trade
            out.append(
                orjson.dumps(
                    {
                        "t": "trade",
                        "s": symbol,
                        "id": tr.trade_id,
                        "p": m.price_text(tr.price),
                        "q": m.size_text(tr.size),
                        "side": tr.side.value,
                    }
                ).decode()
            )
        return out


class ToyAdapter2(ToyAdapter):
    """The same protocol under a second venue id (for cross-venue tests)."""

    venue = "toy2"


class ToyGzipAdapter(ToyAdapter):
    """The toy protocol with every server frame gzip-compressed (like HTX)."""

    venue = "toyz"
    compressed = True

    def decompress(self, frame: bytes) -> bytes:
        import gzip

        return gzip.decompress(frame)


class MockToyGzip(MockToy):
    venue = "toyz"

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        import gzip

        return [gzip.compress(m.encode() if isinstance(m, str) else m) for m in super().render(conn, symbol, change)]

    def snapshot(self, conn: MockConnection, symbol: str) -> str:
        return super().snapshot(conn, symbol)
