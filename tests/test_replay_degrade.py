"""Replay degrades like live: one frame with a symbol no book can have gives
an Error for that frame, and the rest of the recording still plays (10.11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsmux.log import Replay
from wsmux.model import BookUpdate, Error, ErrorKind, Resynced

COINBASE = """wss://ws-feed.exchange.coinbase.com <-> 1700000000.0
1700000000.1: {"type":"snapshot","product_id":"BTC-USD","bids":[["100","1"]],"asks":[["101","1"]]}
1700000000.2: {"type":"snapshot","product_id":"BTC-U$D","bids":[["100","1"]],"asks":[["101","1"]]}
1700000000.3: {"type":"l2update","product_id":"BTC-U$D","changes":[["buy","100.5","2"]],"time":"2023-11-14T22:13:20.3Z"}
1700000000.4: {"type":"l2update","product_id":"BTC-USD","changes":[["buy","100.5","2"]],"time":"2023-11-14T22:13:20.4Z"}
"""
KRAKEN_V1 = """wss://ws.kraken.com <-> 1700000000.0
1700000000.1: [336,{"as":[["101.0","1.0","1.1"]],"bs":[["100.0","1.0","1.1"]]},"book-10","XBT/USD"]
1700000000.2: [337,{"as":[["101.0","1.0","1.2"]],"bs":[["100.0","1.0","1.2"]]},"book-10","XBT/U$D"]
1700000000.3: [336,{"a":[["101.0","2.0","1.3"]]},"book-10","XBT/USD"]
"""


@pytest.mark.parametrize(("venue", "text"), [("coinbase", COINBASE), ("kraken-v1", KRAKEN_V1)])
def test_bad_product_id_is_an_error_and_the_replay_goes_on(tmp_path: Path, venue: str, text: str) -> None:
    path = tmp_path / "capture.ws.1.0"
    path.write_text(text)
    events = list(Replay(path, venue=venue).events())
    errors = [e for e in events if isinstance(e, Error)]
    assert errors, events
    assert all(e.symbol == "BTC-U$D" and e.kind is ErrorKind.BAD_DATA for e in errors)
    assert "UnknownSymbol" in errors[0].message
    good = [e for e in events if getattr(e, "symbol", None) == "BTC-USD"]
    assert any(isinstance(e, Resynced) for e in good)
    # the frame after the bad one still reached the good book
    last = events.index(errors[-1])
    after = [e for e in events[last + 1 :] if isinstance(e, BookUpdate)]
    assert [e.symbol for e in after] == ["BTC-USD"]
