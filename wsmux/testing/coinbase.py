"""Mock Coinbase servers: Exchange (:class:`MockCoinbase`) and Advanced Trade
(:class:`MockCoinbaseAdvanced`).

:class:`MockCoinbase` speaks the protocol of ``shared/exchanges/coinbase-exchange.md``:

* ``subscribe``/``unsubscribe`` with channel names or channel objects, answered
  by a ``subscriptions`` message listing the connection's channels, or by
  ``{"type": "error", "message": "Failed to subscribe", ...}`` for an unknown
  channel or product, an authenticated channel (``level2``, ``full``) without a
  valid signature, or ``faults.reject_subscriptions``. Signatures are checked
  when the mock is given the :class:`~wsmux.credentials.Credentials` to expect;
* ``level2_batch``/``level2``: a ``snapshot`` on subscribe, then one
  ``l2update`` per market step;
* ``matches``: ``last_match`` on subscribe (once a trade happened), then one
  ``match`` per maker order filled, with per-product contiguous ``trade_id``;
* ``ticker``: the current ticker on subscribe, then one per trade;
* ``heartbeat``: every ``heartbeat_every`` steps per product;
* ``full``: the order-by-order stream behind the market (``received``,
  ``open``, ``match``, ``done``, ``change``), every message numbered by the
  per-product ``sequence`` that ``matches``/``ticker``/``heartbeat`` share, and
  the REST level-3 book ``GET /products/<id>/book?level=3`` (``level=2``
  aggregates it) consistent with that sequence.

Internally each product's book is a set of orders (FIFO per price); every
market step is turned into the order events that move the order book to the
market's new level sizes, so ``mock.markets[s].depth()`` is always the
aggregate of the mock's orders.

Faults (``mock.faults``): ``skip_seq`` (withhold the next step's first
sequenced message: ``full`` sees a sequence gap, and ``matches`` a trade-id
gap when it was a match), ``duplicate`` (send the next step's first sequenced
message, its first ``match`` and its ``l2update`` twice), ``reorder`` (swap the next step's first
two ``full`` messages), ``crossed`` (add a bid above the best ask to the next
``l2update``), ``snapshot_status``/``snapshot_garbage`` for the REST book,
plus the base's ``garbage``, ``silent`` and ``reject_subscriptions``.
``bad_checksum`` has no meaning here (Coinbase sends no checksums).
``mock.skip_trades`` withholds the next ``match`` message only.

:class:`MockCoinbaseAdvanced` speaks ``shared/exchanges/coinbase-advanced-trade.md``:
one channel per subscribe message, the ``subscriptions`` ack, ``l2_data``
snapshot/updates, ``market_trades`` (a ``snapshot`` of recent trades, then
updates), ``ticker``, ``candles`` (five-minute buckets, as Coinbase's only
candle: a ``snapshot`` with the forming candle on subscribe, then after each
trade the forming candle, preceded by the final one when the trade opened a
new bucket) and ``heartbeats``, every message stamped with the
connection's ``sequence_num``. ``faults.skip_seq`` skips a ``sequence_num``
(the message is not sent), ``duplicate`` resends a message, ``crossed`` sends
a crossed update.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, ClassVar

import attrs

from wsmux.credentials import Credentials
from wsmux.exchanges.coinbase import coinbase_auth_fields
from wsmux.model import Side
from wsmux.testing._candles import MinuteCandles, MockCandle
from wsmux.testing._market import Change, Market
from wsmux.testing._server import MockConnection, MockExchange

__all__ = ["MockCoinbase", "MockCoinbaseAdvanced"]

_EPOCH_NS = 1_700_000_000_000_000_000


def iso(ns: int, digits: int = 6) -> str:
    """Render ns since the epoch as Coinbase does (``2023-11-14T22:13:20.000000Z``)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac // 10 ** (9 - digits):0{digits}d}Z"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# =============================================================================================
# Coinbase Exchange
# =============================================================================================

_CHANNELS = frozenset({"level2_batch", "level2", "matches", "ticker", "heartbeat", "full"})
_AUTH = frozenset({"level2", "full", "level3"})


@attrs.define
class _Product:
    """The venue-side state of one product."""

    seq: int = 1_000
    trade_id: int = 0
    next_order: int = 0
    bids: dict[int, list[list[Any]]] = attrs.Factory(dict)  # price -> [[order_id, lots], ...]
    asks: dict[int, list[list[Any]]] = attrs.Factory(dict)
    last_trade: dict[str, Any] | None = None  # the last match message
    ticker: dict[str, Any] | None = None
    steps: int = 0


@attrs.define
class _Entry:
    """One message of a step: who gets it and its text."""

    kind: str  # "full" | "match" | "l2" | "ticker" | "heartbeat"
    text: str
    seq: int | None


class MockCoinbase(MockExchange):
    """A mock Coinbase Exchange feed (see the module docstring).

    Args:
        symbols: products (``BTC-USD``).
        credentials: if given, signed subscribes must verify with them.
        heartbeat_every: market steps between heartbeats of a product.
        **kwargs: passed to :class:`MockExchange`.
    """

    server_time_path: ClassVar[str | None] = "/time"

    def server_time_body(self, now_ns: int) -> str:
        """The REST server time (:attr:`~wsmux.testing.MockExchange.clock_skew` applies)."""
        return f'{{"iso":"-","epoch":{now_ns // 1_000_000 / 1000:.3f}}}'

    venue: ClassVar[str] = "coinbase"
    tick: ClassVar[str] = "0.01"
    lot: ClassVar[str] = "0.00000001"

    def __init__(
        self,
        symbols: Any,
        *,
        credentials: Credentials | None = None,
        heartbeat_every: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(symbols, **kwargs)
        self.credentials = credentials
        self.heartbeat_every = heartbeat_every
        self.skip_trades = 0
        self._now_ns = _EPOCH_NS
        self.products: dict[str, _Product] = {}
        for symbol in self.symbols:
            product = _Product()
            market = self.markets[symbol]
            for side, levels in ((product.bids, market.bids), (product.asks, market.asks)):
                for price, lots in levels.items():
                    side[price] = [[self._order_id(symbol, product), part] for part in _split(lots)]
            self.products[symbol] = product

    # --- helpers ----------------------------------------------------------------

    def _order_id(self, symbol: str, product: _Product) -> str:
        product.next_order += 1
        tag = self.symbols.index(symbol)
        return f"{tag:08x}-0000-4000-8000-{product.next_order:012x}"

    def _time(self) -> str:
        self._now_ns = self.stamp_ns(self._now_ns)
        return iso(self._now_ns)

    def last_seq(self, symbol: str) -> int:
        """The product's current ``sequence`` (of its last message)."""
        return self.products[symbol].seq

    def last_trade_id(self, symbol: str) -> int:
        """The product's last ``trade_id`` (0: none yet)."""
        return self.products[symbol].trade_id

    def l3_orders(self, symbol: str) -> list[tuple[str, str, float, float]]:
        """The mock's resting orders ``(order_id, "buy"/"sell", price, size)``, book order."""
        market = self.markets[symbol]
        product = self.products[symbol]
        out: list[tuple[str, str, float, float]] = []
        for side, book, reverse in (("buy", product.bids, True), ("sell", product.asks, False)):
            for price in sorted(book, reverse=reverse):
                for oid, lots in book[price]:
                    out.append((oid, side, market.price(price), market.size(lots)))
        return out

    def _check(self, symbol: str) -> None:
        """Assert the orders aggregate to the market's levels (for tests)."""
        market = self.markets[symbol]
        product = self.products[symbol]
        for book, levels in ((product.bids, market.bids), (product.asks, market.asks)):
            assert {p: sum(o[1] for o in orders) for p, orders in book.items()} == levels

    # --- publishing ---------------------------------------------------------------

    async def publish(self, steps: int = 1, symbols: Any = None) -> None:
        """Advance each market ``steps`` times; send each step's messages to subscribers."""
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                tape = self._advance(symbol, self.markets[symbol].step())
                if self.faults.silent:
                    continue
                for conn in list(self.connections.values()):
                    for message in self._deliver(conn, symbol, tape):
                        await self._send(conn, message)

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        """Messages for one step (advances the venue state; :meth:`publish`
        calls the pieces itself so the state advances once per step)."""
        return self._deliver(conn, symbol, self._advance(symbol, change))

    def _deliver(self, conn: MockConnection, symbol: str, tape: list[_Entry]) -> list[str | bytes]:
        topics = conn.topics
        full = ("full", symbol) in topics
        wants = {
            "full": full,
            "match": full or ("matches", symbol) in topics,
            "l2": ("level2_batch", symbol) in topics or ("level2", symbol) in topics,
            "ticker": ("ticker", symbol) in topics,
            "heartbeat": ("heartbeat", symbol) in topics,
        }
        return [entry.text for entry in tape if wants[entry.kind]]

    def _advance(self, symbol: str, change: Change) -> list[_Entry]:
        """Apply one market step to the product's orders; return its messages."""
        market = self.markets[symbol]
        product = self.products[symbol]
        product.steps += 1
        tape: list[_Entry] = []
        time = self._time()

        def full(body: dict[str, Any], kind: str = "full") -> dict[str, Any]:
            product.seq += 1
            msg = {"type": body.pop("type"), "product_id": symbol, "sequence": product.seq, "time": time, **body}
            tape.append(_Entry(kind, _dumps(msg), product.seq))
            return msg

        trade = change.trade
        if trade is not None:
            taker_side = "buy" if trade.side is Side.BUY else "sell"
            maker_side = "sell" if trade.side is Side.BUY else "buy"
            level = (product.asks if trade.side is Side.BUY else product.bids).get(trade.price, [])
            taker = self._order_id(symbol, product)
            price_text = market.price_text(trade.price)
            full(
                {
                    "type": "received",
                    "order_id": taker,
                    "order_type": "limit",
                    "side": taker_side,
                    "price": price_text,
                    "size": market.size_text(trade.size),
                }
            )
            remaining = trade.size
            match: dict[str, Any] | None = None
            while remaining > 0 and level:
                maker = level[0]
                fill = min(maker[1], remaining)
                remaining -= fill
                maker[1] -= fill
                product.trade_id += 1
                match = full(
                    {
                        "type": "match",
                        "trade_id": product.trade_id,
                        "maker_order_id": maker[0],
                        "taker_order_id": taker,
                        "side": maker_side,
                        "size": market.size_text(fill),
                        "price": price_text,
                    },
                    "match",
                )
                if maker[1] == 0:
                    level.pop(0)
                    full(
                        {
                            "type": "done",
                            "order_id": maker[0],
                            "reason": "filled",
                            "side": maker_side,
                            "price": price_text,
                            "remaining_size": market.size_text(0),
                        }
                    )
            if not level:
                (product.asks if trade.side is Side.BUY else product.bids).pop(trade.price, None)
            full(
                {
                    "type": "done",
                    "order_id": taker,
                    "reason": "filled",
                    "side": taker_side,
                    "price": price_text,
                    "remaining_size": market.size_text(0),
                }
            )
            if match is not None:
                product.last_trade = match
        # Move the orders to the market's new level sizes: every cut first, then
        # every addition, so the book is never crossed between two messages (each
        # level present after the cuts is one the final, uncrossed book has).
        for grow in (False, True):
            for levels, book, side in ((change.bids, product.bids, "buy"), (change.asks, product.asks, "sell")):
                for price, target in levels:
                    orders = book.setdefault(price, [])
                    current = sum(o[1] for o in orders)
                    price_text = market.price_text(price)
                    if grow and target > current:
                        oid = self._order_id(symbol, product)
                        lots = target - current
                        full(
                            {
                                "type": "received",
                                "order_id": oid,
                                "order_type": "limit",
                                "side": side,
                                "price": price_text,
                                "size": market.size_text(lots),
                            }
                        )
                        orders.append([oid, lots])
                        full(
                            {
                                "type": "open",
                                "order_id": oid,
                                "side": side,
                                "price": price_text,
                                "remaining_size": market.size_text(lots),
                            }
                        )
                    while not grow and current > target:
                        oid, lots = orders[-1]
                        if current - lots >= target:
                            orders.pop()
                            current -= lots
                            full(
                                {
                                    "type": "done",
                                    "order_id": oid,
                                    "reason": "canceled",
                                    "side": side,
                                    "price": price_text,
                                    "remaining_size": market.size_text(lots),
                                }
                            )
                        else:
                            new = lots - (current - target)
                            orders[-1][1] = new
                            current = target
                            full(
                                {
                                    "type": "change",
                                    "order_id": oid,
                                    "side": side,
                                    "price": price_text,
                                    "old_size": market.size_text(lots),
                                    "new_size": market.size_text(new),
                                }
                            )
                    if not orders:
                        del book[price]
        # level2 update, ticker, heartbeat
        changes = [["buy", market.price_text(p), market.size_text(s)] for p, s in change.bids]
        changes += [["sell", market.price_text(p), market.size_text(s)] for p, s in change.asks]
        if changes and self.faults.take("crossed"):
            bad = market.best_ask() + 1
            changes.append(["buy", market.price_text(bad), market.size_text(1)])
        if changes:
            l2 = {"type": "l2update", "product_id": symbol, "changes": changes, "time": time}
            tape.append(_Entry("l2", _dumps(l2), None))
        if trade is not None and product.last_trade is not None:
            product.ticker = self._ticker_msg(symbol, taker_side)
            tape.append(_Entry("ticker", _dumps(product.ticker), product.ticker["sequence"]))
        if self.heartbeat_every and product.steps % self.heartbeat_every == 0:
            beat = {
                "type": "heartbeat",
                "sequence": product.seq,
                "last_trade_id": product.trade_id,
                "product_id": symbol,
                "time": time,
            }
            tape.append(_Entry("heartbeat", _dumps(beat), None))
        return self._faults(tape)

    def _ticker_msg(self, symbol: str, taker_side: str) -> dict[str, Any]:
        market = self.markets[symbol]
        product = self.products[symbol]
        last = product.last_trade
        assert last is not None
        bb, ba = market.best_bid(), market.best_ask()
        return {
            "type": "ticker",
            "sequence": last["sequence"],
            "product_id": symbol,
            "price": last["price"],
            "open_24h": last["price"],
            "volume_24h": "0",
            "low_24h": last["price"],
            "high_24h": last["price"],
            "volume_30d": "0",
            "best_bid": market.price_text(bb),
            "best_bid_size": market.size_text(market.bids[bb]),
            "best_ask": market.price_text(ba),
            "best_ask_size": market.size_text(market.asks[ba]),
            "side": taker_side,
            "time": last["time"],
            "trade_id": last["trade_id"],
            "last_size": last["size"],
        }

    def _faults(self, tape: list[_Entry]) -> list[_Entry]:
        faults = self.faults
        sequenced = [i for i, e in enumerate(tape) if e.kind in ("full", "match")]
        if self.skip_trades:
            matches = [i for i, e in enumerate(tape) if e.kind == "match"]
            if matches:
                self.skip_trades -= 1
                del tape[matches[0]]
                sequenced = [i for i, e in enumerate(tape) if e.kind in ("full", "match")]
        if sequenced and faults.take("skip_seq"):
            del tape[sequenced[0]]
            sequenced = [i for i, e in enumerate(tape) if e.kind in ("full", "match")]
        fulls = [i for i, e in enumerate(tape) if e.kind == "full"]
        if len(fulls) >= 2 and faults.take("reorder"):
            i, j = fulls[0], fulls[1]
            tape[i], tape[j] = tape[j], tape[i]
        if sequenced and faults.take("duplicate"):
            twice = {id(tape[sequenced[0]])}
            for kind in ("match", "l2"):
                first = next((e for e in tape if e.kind == kind), None)
                if first is not None:
                    twice.add(id(first))
            doubled: list[_Entry] = []
            for entry in tape:
                doubled.append(entry)
                if id(entry) in twice:
                    doubled.append(entry)
            tape = doubled
        return tape

    # --- subscriptions ------------------------------------------------------------

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            kind = msg["type"]
            channels = msg["channels"]
        except (ValueError, KeyError, TypeError):
            await conn.send(_dumps({"type": "error", "message": "Malformed JSON", "reason": "bad message"}))
            return
        if kind not in ("subscribe", "unsubscribe"):
            await conn.send(_dumps({"type": "error", "message": f"Unknown type {kind!r}", "reason": ""}))
            return
        default_products = msg.get("product_ids", [])
        topics: list[tuple[str, str]] = []
        for channel in channels:
            if isinstance(channel, str):
                name, products = channel, default_products
            else:
                name, products = channel.get("name"), channel.get("product_ids", default_products)
            if name not in _CHANNELS:
                await self._reject(conn, f"{name!r} is not a valid channel")
                return
            for product in products:
                if product not in self.products:
                    await self._reject(conn, f"{product} is not a valid product")
                    return
                topics.append((name, product))
        if kind == "unsubscribe":
            for topic in topics:
                conn.topics.discard(topic)
            await conn.send(self._subscriptions(conn))
            return
        if self.faults.reject_subscriptions:
            await self._reject(conn, "mock fault: rejected")
            return
        if any(name in _AUTH for name, _ in topics) and not self._signed(msg):
            await self._reject(conn, "authentication is required for the level2 and full channels")
            return
        new = [t for t in topics if t not in conn.topics]
        conn.topics.update(topics)
        await conn.send(self._subscriptions(conn))
        for name, symbol in new:
            product = self.products[symbol]
            if name in ("level2_batch", "level2"):
                await conn.send(self._snapshot(symbol))
            elif name == "matches" and product.last_trade is not None:
                await conn.send(_dumps({**product.last_trade, "type": "last_match"}))
            elif name == "ticker" and product.ticker is not None:
                await conn.send(_dumps(product.ticker))

    def _signed(self, msg: dict[str, Any]) -> bool:
        fields = ("signature", "key", "passphrase", "timestamp")
        if not all(isinstance(msg.get(f), str) for f in fields):
            return False
        if self.credentials is None:
            return True
        expected = coinbase_auth_fields(self.credentials, msg["timestamp"])
        return all(msg[f] == expected[f] for f in fields)

    async def _reject(self, conn: MockConnection, reason: str) -> None:
        await conn.send(_dumps({"type": "error", "message": "Failed to subscribe", "reason": reason}))

    def _subscriptions(self, conn: MockConnection) -> str:
        names: dict[str, list[str]] = {}
        for name, product in sorted(conn.topics):
            names.setdefault(name, []).append(product)
        return _dumps({"type": "subscriptions", "channels": [{"name": n, "product_ids": p} for n, p in names.items()]})

    def _snapshot(self, symbol: str) -> str:
        market = self.markets[symbol]
        bids = [[market.price_text(p), market.size_text(market.bids[p])] for p in sorted(market.bids, reverse=True)]
        asks = [[market.price_text(p), market.size_text(market.asks[p])] for p in sorted(market.asks)]
        return _dumps({"type": "snapshot", "product_id": symbol, "bids": bids, "asks": asks})

    # --- REST -------------------------------------------------------------------------

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        if path == "/products":
            rows = [_product_row(self, p, "id", "quote_increment") for p in self.products]
            return self.instruments_answer(lambda: rows)
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "products" or parts[2] != "book":
            return None
        symbol = parts[1]
        if symbol not in self.products:
            return 404, b'{"message":"NotFound"}'
        if self.faults.snapshot_status != 200:
            return self.faults.snapshot_status, b'{"message":"mock fault"}'
        if self.faults.take("snapshot_garbage"):
            return 200, b'{"sequence": 12, "bids": [[oops'
        market = self.markets[symbol]
        product = self.products[symbol]
        level = query.get("level", "1")
        body: dict[str, Any] = {"sequence": product.seq, "auction_mode": False, "auction": None}
        if level == "3":
            body["bids"] = [
                [market.price_text(p), market.size_text(lots), oid]
                for p in sorted(product.bids, reverse=True)
                for oid, lots in product.bids[p]
            ]
            body["asks"] = [
                [market.price_text(p), market.size_text(lots), oid]
                for p in sorted(product.asks)
                for oid, lots in product.asks[p]
            ]
        else:
            body["bids"] = [
                [market.price_text(p), market.size_text(market.bids[p]), len(product.bids[p])]
                for p in sorted(market.bids, reverse=True)
            ]
            body["asks"] = [
                [market.price_text(p), market.size_text(market.asks[p]), len(product.asks[p])]
                for p in sorted(market.asks)
            ]
        body["time"] = iso(self._now_ns)
        return 200, _dumps(body).encode()


def _split(lots: int) -> list[int]:
    """Split a level's size into 1-3 orders (deterministic)."""
    count = min(1 + lots % 3, lots)
    base = lots // count
    parts = [base] * count
    parts[-1] += lots - base * count
    return parts


# =============================================================================================
# Coinbase Advanced Trade
# =============================================================================================

_ADV_CHANNELS = frozenset({"level2", "market_trades", "ticker", "heartbeats", "candles"})
_FIVE_MINUTES_MS = 300_000


def _product_row(mock: MockExchange, symbol: str, id_key: str, tick_key: str) -> dict[str, Any]:
    """One online spot product of a Coinbase product list (Exchange and
    Advanced Trade spell the id and tick fields differently)."""
    base, _, quote = symbol.partition("-")
    currency = "_currency" if id_key == "id" else "_currency_id"
    row: dict[str, Any] = {id_key: symbol, "base" + currency: base, "quote" + currency: quote}
    row.update({tick_key: mock.tick, "base_increment": mock.lot, "status": "online"})
    if id_key == "id":
        row["trading_disabled"] = False
    else:
        row.update(product_type="SPOT", is_disabled=False)
    return row


class MockCoinbaseAdvanced(MockExchange):
    """A mock Coinbase Advanced Trade market-data feed (see the module docstring)."""

    venue: ClassVar[str] = "coinbase-advanced"
    tick: ClassVar[str] = "0.01"
    lot: ClassVar[str] = "0.00000001"

    def __init__(self, symbols: Any, **kwargs: Any) -> None:
        super().__init__(symbols, **kwargs)
        self._now_ns = _EPOCH_NS
        self.trades: dict[str, list[dict[str, Any]]] = {s: [] for s in self.symbols}
        self.candles = MinuteCandles(_FIVE_MINUTES_MS)
        """The five-minute candles built from the mock's trades (``candles``)."""

    def _time(self) -> str:
        self._now_ns = self.stamp_ns(self._now_ns)
        return iso(self._now_ns, 9)

    def http(self, path: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        """``GET /api/v3/brokerage/market/products`` (the public product list)."""
        if path != "/api/v3/brokerage/market/products":
            return None
        return self.instruments_answer(
            lambda: {
                "products": [_product_row(self, s, "product_id", "price_increment") for s in self.symbols],
                "num_products": len(self.symbols),
            }
        )

    def _envelope(self, conn: MockConnection, channel: str, events: list[dict[str, Any]]) -> str | None:
        """Stamp the connection's next ``sequence_num`` (None: skipped by a fault)."""
        seq = conn.state.get("seq", 0)
        conn.state["seq"] = seq + 1
        if self.faults.take("skip_seq"):
            return None
        return _dumps(
            {"channel": channel, "client_id": "", "timestamp": self._time(), "sequence_num": seq, "events": events}
        )

    def last_sequence_num(self) -> int:
        """The last ``sequence_num`` given out on the first connection."""
        conn = next(iter(self.connections.values()))
        return int(conn.state.get("seq", 0)) - 1

    async def _out(self, conn: MockConnection, channel: str, events: list[dict[str, Any]]) -> None:
        text = self._envelope(conn, channel, events)
        if text is None:
            return
        await self._send(conn, text)
        if self.faults.take("duplicate"):
            await self._send(conn, text)

    async def publish(self, steps: int = 1, symbols: Any = None) -> None:
        targets = list(symbols) if symbols is not None else self.symbols
        for _ in range(steps):
            for symbol in targets:
                change = self.markets[symbol].step()
                trade = self._trade(symbol, change)
                bars: list[dict[str, Any]] = []
                if change.trade is not None:
                    t_ms = self._now_ns // 1_000_000
                    closed, forming = self.candles.on_trade(symbol, t_ms, change.trade.price, change.trade.size)
                    bars = [self._candle(symbol, c) for c in (closed, forming) if c is not None]
                if self.faults.silent:
                    continue
                for conn in list(self.connections.values()):
                    await self._render_to(conn, symbol, change, trade)
                    if bars and ("candles", symbol) in conn.topics:
                        await self._out(conn, "candles", [{"type": "update", "candles": bars}])

    def render(self, conn: MockConnection, symbol: str, change: Change) -> list[str | bytes]:
        raise NotImplementedError("MockCoinbaseAdvanced stamps per-connection sequence numbers in publish()")

    def _trade(self, symbol: str, change: Change) -> dict[str, Any] | None:
        if change.trade is None:
            return None
        market = self.markets[symbol]
        t = change.trade
        trade = {
            "trade_id": str(t.trade_id),
            "product_id": symbol,
            "price": market.price_text(t.price),
            "size": market.size_text(t.size),
            "side": "BUY" if t.side is Side.BUY else "SELL",
            "time": iso(self._now_ns + 1, 9),
        }
        self.trades[symbol].append(trade)
        return trade

    async def _render_to(self, conn: MockConnection, symbol: str, change: Change, trade: dict[str, Any] | None) -> None:
        market = self.markets[symbol]
        topics = conn.topics
        if ("level2", symbol) in topics:
            updates = [self._level(market, "bid", p, s) for p, s in change.bids]
            updates += [self._level(market, "offer", p, s) for p, s in change.asks]
            if updates and self.faults.take("crossed"):
                updates.append(self._level(market, "bid", market.best_ask() + 1, 1))
            if updates:
                await self._out(conn, "l2_data", [{"type": "update", "product_id": symbol, "updates": updates}])
        if trade is not None and ("market_trades", symbol) in topics:
            await self._out(conn, "market_trades", [{"type": "update", "trades": [trade]}])
        if trade is not None and ("ticker", symbol) in topics:
            await self._out(conn, "ticker", [{"type": "update", "tickers": [self._ticker_msg(symbol)]}])

    def _candle(self, symbol: str, candle: MockCandle) -> dict[str, Any]:
        market = self.markets[symbol]
        return {
            "start": str(candle.start_ms // 1000),
            "high": market.price_text(candle.high),
            "low": market.price_text(candle.low),
            "open": market.price_text(candle.open),
            "close": market.price_text(candle.close),
            "volume": market.size_text(candle.volume),
            "product_id": symbol,
        }

    def _level(self, market: Market, side: str, price: int, lots: int) -> dict[str, Any]:
        return {
            "side": side,
            "event_time": iso(self._now_ns, 9),
            "price_level": market.price_text(price),
            "new_quantity": market.size_text(lots),
        }

    def _ticker_msg(self, symbol: str) -> dict[str, Any]:
        market = self.markets[symbol]
        bb, ba = market.best_bid(), market.best_ask()
        last = self.trades[symbol][-1] if self.trades[symbol] else None
        return {
            "type": "ticker",
            "product_id": symbol,
            "price": last["price"] if last else market.price_text(bb),
            "best_bid": market.price_text(bb),
            "best_bid_quantity": market.size_text(market.bids[bb]),
            "best_ask": market.price_text(ba),
            "best_ask_quantity": market.size_text(market.asks[ba]),
        }

    async def heartbeat(self) -> None:
        """Send one ``heartbeats`` message to every connection subscribed to it."""
        if self.faults.silent:
            return
        for conn in list(self.connections.values()):
            if ("heartbeats", "") in conn.topics:
                counter = conn.state.get("beats", 0) + 1
                conn.state["beats"] = counter
                events = [{"current_time": iso(self._now_ns, 9), "heartbeat_counter": counter}]
                await self._out(conn, "heartbeats", events)

    async def on_message(self, conn: MockConnection, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            kind = msg["type"]
            channel = msg["channel"]
            products = msg.get("product_ids", [])
        except (ValueError, KeyError, TypeError):
            await conn.send(_dumps({"type": "error", "message": "malformed request"}))
            return
        if channel not in _ADV_CHANNELS or kind not in ("subscribe", "unsubscribe"):
            await conn.send(_dumps({"type": "error", "message": f"Failure to subscribe to {channel!r}"}))
            return
        if kind == "subscribe" and self.faults.reject_subscriptions:
            await conn.send(_dumps({"type": "error", "message": "Failure to subscribe: mock fault"}))
            return
        unknown = [p for p in products if p not in self.markets]
        if unknown:
            await conn.send(_dumps({"type": "error", "message": f"Failure to subscribe: unknown {unknown}"}))
            return
        topics = [(channel, p) for p in products] if products else [(channel, "")]
        if kind == "unsubscribe":
            for topic in topics:
                conn.topics.discard(topic)
        else:
            conn.topics.update(topics)
        subs: dict[str, list[str]] = {}
        for name, product in sorted(conn.topics):
            subs.setdefault(name, [])
            if product:
                subs[name].append(product)
        await self._out(conn, "subscriptions", [{"subscriptions": subs}])
        if kind != "subscribe":
            return
        for name, symbol in topics:
            if name == "level2":
                market = self.markets[symbol]
                updates = [self._level(market, "bid", p, market.bids[p]) for p in sorted(market.bids, reverse=True)]
                updates += [self._level(market, "offer", p, market.asks[p]) for p in sorted(market.asks)]
                await self._out(conn, "l2_data", [{"type": "snapshot", "product_id": symbol, "updates": updates}])
            elif name == "market_trades":
                recent = list(reversed(self.trades[symbol][-50:]))
                await self._out(conn, "market_trades", [{"type": "snapshot", "trades": recent}])
            elif name == "ticker":
                await self._out(conn, "ticker", [{"type": "snapshot", "tickers": [self._ticker_msg(symbol)]}])
            elif name == "candles":
                forming = self.candles.forming.get(symbol)
                bars = [self._candle(symbol, forming)] if forming is not None else []
                await self._out(conn, "candles", [{"type": "snapshot", "candles": bars}])
