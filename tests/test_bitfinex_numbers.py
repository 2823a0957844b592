"""Bitfinex number text: the adapter re-renders JSON numbers as JavaScript does.

Bitfinex writes JSON with JavaScript and computes its book checksum on
JavaScript number text; orjson keeps only the float. These tests prove that
:func:`wsmux.exchanges.bitfinex.js_text` gives back the exact text for the
values that matter:

* a table of hand-checked JavaScript outputs (``String(x)`` in Node);
* Hypothesis: the fast path agrees with the reference formatter and
  round-trips for any finite double;
* Node.js itself (skipped when ``node`` is absent): JavaScript writes a frame
  of random numbers, the adapter's text must equal ``String(x)`` for each; and
  JavaScript computes the Bitfinex checksum of random books the way the
  venue's docs do (``[price, amount, ...].join(":")``, CRC32, signed), which
  the adapter + BookSync must reproduce from the JSON text alone.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsmux.book import BookSync, Verdict
from wsmux.book.checksum import bitfinex_format
from wsmux.exchanges.bitfinex import BitfinexAdapter, js_text
from wsmux.model import BookSnapshot, BookUpdate

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node (JavaScript reference) not installed")


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("60400", "60400"),
        ("0.68826974", "0.68826974"),
        ("-0.5", "-0.5"),
        ("7245.3", "7245.3"),
        ("0.0089", "0.0089"),
        ("0.00001", "0.00001"),
        ("0.000001", "0.000001"),
        ("1e-7", "1e-7"),
        ("5.5e-7", "5.5e-7"),
        ("-1.23e-8", "-1.23e-8"),
        ("0.1", "0.1"),
        ("100000", "100000"),
        ("1e16", "10000000000000000"),
        ("123456789012345680000", "123456789012345680000"),
        ("1e21", "1e+21"),
        ("1.5e+21", "1.5e+21"),
        ("5e-324", "5e-324"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("-0", "0"),
        ("0", "0"),
        ("60400.0", "60400"),  # not what JavaScript writes, but the same number
        ("9007199254740993", "9007199254740992"),  # beyond 2**53: the double JS holds
    ],
)
def test_js_text_table(wire: str, expected: str) -> None:
    assert js_text(orjson.loads(wire)) == expected


@pytest.mark.parametrize("bad", [True, False, "1.5", None, [1], {"a": 1}])
def test_js_text_rejects_non_numbers(bad: Any) -> None:
    with pytest.raises(TypeError):
        js_text(bad)


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_js_text_fast_path_agrees_with_reference(x: float) -> None:
    text = js_text(x)
    assert text == bitfinex_format(x)
    assert float(text) == x


@settings(max_examples=1000, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**64))
def test_js_text_integers(n: int) -> None:
    expected = bitfinex_format(float(n)) if abs(n) > 2**53 else str(n)
    assert js_text(n) == expected


def _typical_values(rng: random.Random, n: int) -> list[float]:
    """Prices and amounts of the shapes Bitfinex sends, plus awkward doubles."""
    out: list[float] = []
    for _ in range(n):
        kind = rng.randrange(6)
        if kind == 0:  # price: up to 5 significant digits, 0-2 decimals
            out.append(round(rng.uniform(0.0001, 99999), rng.choice((0, 1, 2, 5))))
        elif kind == 1:  # amount with up to 8 decimals
            out.append(round(rng.uniform(0, 50), rng.randint(1, 8)) or 1e-8)
        elif kind == 2:  # tiny amounts around JavaScript's 1e-6 switch
            out.append(rng.randint(1, 999) * 10.0 ** rng.randint(-10, -5))
        elif kind == 3:  # any double
            out.append(rng.uniform(-1, 1) * 10.0 ** rng.randint(-30, 30))
        elif kind == 4:  # big values around 1e21
            out.append(rng.randint(1, 99999) * 10.0 ** rng.randint(14, 22))
        else:
            out.append(-round(rng.uniform(0, 10), rng.randint(0, 8)))
    return out


def _node(script: str, stdin: str) -> Any:
    assert NODE is not None
    result = subprocess.run([NODE, "-e", script], input=stdin, capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout)


@needs_node
def test_js_text_matches_node_on_javascript_written_json() -> None:
    values = _typical_values(random.Random(20260131), 20_000)
    # Python's repr round-trips exactly, so JavaScript gets the same doubles.
    stdin = "[" + ",".join(repr(v) for v in values) + "]"
    out = _node(
        "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const a=JSON.parse(s);"
        "process.stdout.write(JSON.stringify({wire:JSON.stringify(a),text:a.map(String)}))})",
        stdin,
    )
    decoded = orjson.loads(out["wire"])  # what the adapter's parser sees
    assert len(decoded) == len(values)
    mismatches = [(t, js_text(v)) for v, t in zip(decoded, out["text"], strict=True) if js_text(v) != t]
    assert mismatches == []
    # JSON.stringify writes a number exactly as String() does:
    assert out["wire"] == "[" + ",".join(out["text"]) + "]"


_NODE_BOOKS = r"""
const crcTable = [];
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  crcTable.push(c >>> 0);
}
function crc32signed(str) {
  let c = 0xffffffff;
  for (let i = 0; i < str.length; i++) c = crcTable[(c ^ str.charCodeAt(i)) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) | 0;
}
let seed = 12345;
function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; }
function amount() {
  const r = rnd();
  if (r < 0.2) return Math.floor(rnd() * 999 + 1) * Math.pow(10, -7 - Math.floor(rnd() * 3));
  if (r < 0.6) return Number((rnd() * 20).toFixed(1 + Math.floor(rnd() * 8))) || 0.5;
  return Math.floor(rnd() * 5000 + 1) / 1000;
}
const out = [];
for (let b = 0; b < 150; b++) {
  const chan = 1000 + b;
  const bids = new Map(), asks = new Map();
  const mid = 20000 + Math.floor(rnd() * 50000);
  const tick = [1, 0.1, 0.01][b % 3];
  for (let i = 1; i <= 40; i++) {
    bids.set(Number((mid - i * tick).toFixed(2)), amount());
    asks.set(Number((mid + i * tick).toFixed(2)), -amount());
  }
  const frames = [];
  let seq = 1;
  const snap = [...bids].map(([p, a]) => [p, 1, a]).concat([...asks].map(([p, a]) => [p, 2, a]));
  const checksum = () => {
    const bp = [...bids.keys()].sort((x, y) => y - x).slice(0, 25);
    const ap = [...asks.keys()].sort((x, y) => x - y).slice(0, 25);
    const cs = [];
    for (let i = 0; i < 25; i++) {
      if (i < bp.length) cs.push(bp[i], bids.get(bp[i]));
      if (i < ap.length) cs.push(ap[i], asks.get(ap[i]));
    }
    return crc32signed(cs.join(':'));
  };
  frames.push(JSON.stringify([chan, snap, seq++]));
  frames.push(JSON.stringify([chan, 'cs', checksum(), seq++]));
  for (let u = 0; u < 30; u++) {
    const isBid = rnd() < 0.5, side = isBid ? bids : asks;
    const keys = [...side.keys()];
    if (rnd() < 0.3 && keys.length > 26) {
      const p = keys[Math.floor(rnd() * keys.length)];
      side.delete(p);
      frames.push(JSON.stringify([chan, [p, 0, isBid ? 1 : -1], seq++]));
    } else {
      const p = keys[Math.floor(rnd() * keys.length)];
      const a = isBid ? amount() : -amount();
      side.set(p, a);
      frames.push(JSON.stringify([chan, [p, 3, a], seq++]));
    }
    frames.push(JSON.stringify([chan, 'cs', checksum(), seq++]));
  }
  out.push({chan, frames});
}
process.stdout.write(JSON.stringify(out));
"""


@needs_node
def test_checksums_computed_by_javascript_match() -> None:
    """JavaScript builds books from JS numbers and checksums them as the
    Bitfinex docs do; the adapter sees only the JSON text."""
    books = _node(_NODE_BOOKS, "")
    checked = 0
    tiny = 0
    for book in books:
        adapter = BitfinexAdapter()
        chan = book["chan"]
        adapter.parse(json.dumps({"event": "subscribed", "channel": "book", "chanId": chan, "symbol": "tBTCUSD"}), 0)
        sync = BookSync(adapter.book_rule("BTC-USD"))
        for frame in book["frames"]:
            (event,) = adapter.parse(frame, 0)
            if isinstance(event, BookSnapshot):
                verdict = sync.on_snapshot(event)
                assert verdict is Verdict.SYNCED
            else:
                assert isinstance(event, BookUpdate)
                verdict = sync.on_update(event)
                assert verdict is Verdict.APPLIED, (sync.detail, frame)
                if event.checksum is not None:
                    checked += 1
                tiny += sum("e-" in t for _, t in (event.bids_text or ()) + (event.asks_text or ()))
        assert sync.stats.checksum_mismatches == 0
    assert checked == 150 * 31
    assert tiny > 0  # exponent-form amounts were exercised
