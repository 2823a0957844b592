"""Replay "just works" on captures (issue 11.7): venue, protocol version,
subscriptions and REST neighbours come from the capture itself; a folder of
logs from two venues feeds each file to its own venue; ``--speed`` is
honoured; outputs carry the native symbol; ``Replay.book`` reads the book."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import run_wsmux
from test_replay_degrade import COINBASE, KRAKEN_V1

from wsmux.errors import UnknownSymbol, UnknownVenue, UnsupportedVenue
from wsmux.exchanges.kraken import KrakenV1Adapter
from wsmux.log import Direction, LogHeader, LogWriter, Replay
from wsmux.log._detect import detect_capture
from wsmux.model import BookSnapshot, BookUpdate, Candle, Error, ErrorKind, Resynced

RECORDINGS = Path(__file__).parents[1] / ".." / "shared" / "recordings"
needs_recordings = pytest.mark.skipif(not RECORDINGS.is_dir(), reason="../shared/recordings not present")
SUPPORTED = [
    "BINANCE.ws.1.0",
    "COINBASE.ws.28.0",
    "GEMINI.ws.1.0",
    "KRAKEN.ws.48.0",
    "KRAKEN.ws.49.0",
    "KRAKEN.ws.50.0",
    "KRAKEN_FUTURES.ws.1.0",
    "DERIBIT.ws.1.0",
    "BITMEX.ws.1.0",
    "KUCOIN.ws.1.0",
]
UNSUPPORTED: dict[str, str] = {}


# --- detection, no recordings needed ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "venue"),
    [
        ("wss://ws.kraken.com", "kraken-v1"),
        ("wss://ws.kraken.com/", "kraken-v1"),
        ("wss://ws.kraken.com/v2", "kraken"),
        ("wss://stream.binance.com:9443/stream?streams=btcusdt@depth", "binance"),
        ("wss://fstream.binance.com/stream?streams=btcusdt@depth", "binance-usdm"),
        ("wss://ws-feed.pro.coinbase.com", "coinbase"),
        ("wss://advanced-trade-ws.coinbase.com", "coinbase-advanced"),
    ],
)
def test_venue_and_version_from_the_recorded_url(tmp_path: Path, url: str, venue: str) -> None:
    path = tmp_path / "CAPTURE.ws.1.0"
    path.write_text(f"{url} <-> 1700000000.0\n1700000000.1: {{}}\n")
    capture = detect_capture(path)
    assert (capture.venue, capture.how) == (venue, "url")


@pytest.mark.parametrize(
    ("frame", "venue"),
    [('{"connectionID":1,"event":"systemStatus","status":"online"}', "kraken-v1"),
     ('{"channel":"status","type":"update","data":[]}', "kraken")],
)  # fmt: skip
def test_kraken_version_from_the_frames_without_url(tmp_path: Path, frame: str, venue: str) -> None:
    path = tmp_path / "KRAKEN.ws.1.0"
    path.write_text(f"1700000000.1: {frame}\n")
    assert (detect_capture(path).venue, detect_capture(path).how) == (venue, "frames")


@pytest.mark.parametrize(
    ("name", "venue"),
    [("BINANCE_US", "binance-us"), ("BINANCE_FUTURES", "binance-usdm"), ("BINANCE_DELIVERY", "binance-coinm")],
)
def test_cryptofeed_file_names_map_to_venue_ids(tmp_path: Path, name: str, venue: str) -> None:
    path = tmp_path / f"{name}.ws.1.0"
    path.write_text("1700000000.1: {}\n")
    assert detect_capture(path).venue == venue


def test_binance_subscriptions_from_the_url_and_rest_from_the_neighbour(tmp_path: Path) -> None:
    ws = tmp_path / "BINANCE.ws.1.0"
    ws.write_text(
        "wss://stream.binance.com:9443/stream?streams=nknusdt@depth@100ms/lrcbtc@bookTicker/nknusdt@kline_1m"
        " <-> 1700000000.0\n1700000000.1: {}\n"
    )
    rest = tmp_path / "BINANCE.http.0.0"
    rest.write_text('https://api.binance.com/api/v3/depth?symbol=NKNUSDT -> 1700000000.2: {"lastUpdateId":1}\n')
    (tmp_path / "OTHER.ws.1.0").write_text("1700000000.1: {}\n")
    capture = detect_capture(ws)
    assert {str(s) for s in capture.subscriptions} == {
        "binance:book:NKN-USDT",
        "binance:quotes:LRC-BTC",
        "binance:candles:NKN-USDT",
    }
    assert capture.rest_files == (rest,)
    assert capture.unsupported_channels == ()


def test_binance_klines_of_other_intervals_stay_unsupported(tmp_path: Path) -> None:
    ws = tmp_path / "BINANCE.ws.1.0"
    ws.write_text(
        "wss://stream.binance.com:9443/stream?streams=nknusdt@kline_5m/nknusdt@kline_1m <-> 1700000000.0\n"
        "1700000000.1: {}\n"
    )
    capture = detect_capture(ws)
    assert {str(s) for s in capture.subscriptions} == {"binance:candles:NKN-USDT"}
    assert capture.unsupported_channels == ("kline_5m",)


def test_subscriptions_from_recorded_subscribe_frames(tmp_path: Path) -> None:
    path = tmp_path / "CAPTURE.ws.1.0"
    path.write_text(
        "wss://ws.kraken.com <-> 1700000000.0\n"
        'wss://ws.kraken.com <- 1700000000.1: {"event":"subscribe","pair":["XBT/USD","ETH/EUR"],'
        '"subscription":{"name":"book","depth":10}}\n'
        'wss://ws.kraken.com <- 1700000000.2: {"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"ohlc"}}\n'
    )
    capture = detect_capture(path)
    assert {str(s) for s in capture.subscriptions} == {"kraken-v1:book:BTC-USD", "kraken-v1:book:ETH-EUR"}
    assert capture.unsupported_channels == ("ohlc",)


def test_unsupported_venue_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "EXAMPLEX.ws.1.0"  # a venue wsmux will never have
    path.write_text("wss://ws.example.com/feed <-> 1700000000.0\n1700000000.1: {}\n")
    with pytest.raises(UnsupportedVenue, match="'examplex' is not supported by wsmux yet"):
        Replay(path)
    replay = Replay(path, skip_unsupported=True)
    assert [p for p, _ in replay.skipped] == [path]
    assert list(replay.events()) == []


def test_cli_names_an_unsupported_venue_with_exit_code_3(tmp_path: Path) -> None:
    path = tmp_path / "LUNO.ws.1.0"  # a venue wsmux has no adapter for (Deribit has one now)
    path.write_text("wss://ws.luno.com/api/1/stream/XBTZAR <-> 1700000000.0\n1700000000.1: {}\n")
    proc = run_wsmux("replay", str(path))
    assert proc.returncode == 3
    assert "venue 'luno' is not supported by wsmux yet" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- a folder of wsmux logs from two venues ---------------------------------------------


def _text_frames(text: str) -> list[tuple[int, str]]:
    out = []
    for line in text.splitlines()[1:]:
        t, _, frame = line.partition(": ")
        out.append((int(float(t) * 1e9), frame))
    return out


def test_a_folder_of_logs_from_two_venues_feeds_each_file_to_its_venue(tmp_path: Path) -> None:
    for venue, text, url in (
        ("coinbase", COINBASE, "wss://ws-feed.exchange.coinbase.com"),
        ("kraken-v1", KRAKEN_V1, "wss://ws.kraken.com"),
    ):
        with LogWriter(tmp_path, LogHeader(venue=venue, endpoint=url), prefix=venue) as log:
            log.write(Direction.OPEN, 1_700_000_000 * 10**9, 1, "[]", url)
            for ns, frame in _text_frames(text):
                log.write(Direction.IN, ns, 1, frame)
    replay = Replay(tmp_path)
    events = list(replay.events())
    resynced = {(e.venue, e.symbol) for e in events if isinstance(e, Resynced)}
    assert resynced == {("coinbase", "BTC-USD"), ("kraken-v1", "BTC-USD")}
    assert not [e for e in events if isinstance(e, Error) and e.symbol != "BTC-U$D"]


# --- speed --------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_events_are_paced_at_speed(tmp_path: Path, speed: float) -> None:
    path = tmp_path / "COINBASE.ws.1.0"
    path.write_text(COINBASE)  # frames 0.1 .. 0.4 s after the open: 0.4 s of recording
    fake = FakeTime()
    replay = Replay(path, speed=speed, clock=fake.clock, sleep=fake.sleep)
    list(replay.events())
    assert sum(fake.slept) == pytest.approx(0.4 / speed)
    unpaced = FakeTime()
    list(Replay(path, clock=unpaced.clock, sleep=unpaced.sleep).events())
    assert unpaced.slept == []


def test_cli_honours_speed(tmp_path: Path) -> None:
    path = tmp_path / "COINBASE.ws.1.0"
    path.write_text(COINBASE)
    proc = run_wsmux("replay", "--speed", "2", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "(at speed 2)" in proc.stdout
    # 0.4 s of recording at speed 2 cannot finish in less than 0.2 s (a lower bound, never flaky)
    elapsed = float(proc.stdout.rsplit(" events in ", 1)[1].split(" s", 1)[0])
    assert elapsed >= 0.2


# --- outputs -----------------------------------------------------------------------------


def test_jsonl_and_summary_carry_the_native_symbol(tmp_path: Path) -> None:
    path = tmp_path / "KRAKEN.ws.1.0"
    path.write_text(KRAKEN_V1)
    proc = run_wsmux("replay", "--format", "jsonl", str(path))
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    good = [r for r in records if r.get("symbol") == "BTC-USD"]
    assert good and all(r["native"] == "XBT/USD" for r in good)
    summary = run_wsmux("replay", str(path)).stdout
    assert any(line.split()[:3] == ["kraken-v1", "BTC-USD", "XBT/USD"] for line in summary.splitlines())


def test_book_snapshot_after_a_sync_keeps_the_checksum(tmp_path: Path) -> None:
    path = tmp_path / "KRAKEN.ws.1.0"
    path.write_text(KRAKEN_V1)
    replay = Replay(path)
    rule = KrakenV1Adapter().book_rule("BTC-USD")
    assert rule.checksum is not None
    checked = 0
    for event in replay.events():
        if isinstance(event, BookSnapshot) and event.symbol == "BTC-USD":
            # the venue's CRC of the book just synced, as a live Kraken snapshot frame would carry
            assert event.checksum is not None
            assert event.checksum == rule.checksum(replay.book("kraken-v1", "BTC-USD").copy())
            checked += 1
    assert checked == 1


def test_replay_book_reads_the_replayed_book_between_events(tmp_path: Path) -> None:
    path = tmp_path / "COINBASE.ws.1.0"
    path.write_text(COINBASE)
    replay = Replay(path)
    bids = []
    for event in replay.events():
        if isinstance(event, BookSnapshot | BookUpdate) and event.symbol == "BTC-USD":
            view = replay.book("coinbase", "BTC-USD")
            assert view.valid
            bids.append(view.best_bid())
    assert [tuple(b) for b in bids if b is not None] == [(100.0, 1.0), (100.5, 2.0)]
    with pytest.raises(UnknownSymbol):
        replay.book("coinbase", "ETH-USD")
    with pytest.raises(UnknownVenue):
        replay.book("okx", "BTC-USDT")


# --- the real captures ----------------------------------------------------------------------


@needs_recordings
@pytest.mark.recordings
@pytest.mark.parametrize("name", SUPPORTED)
def test_every_supported_capture_replays_with_no_flags_and_no_errors(name: str) -> None:
    replay = Replay(RECORDINGS / name)
    events = list(replay.events())
    errors = [e for e in events if isinstance(e, Error) and e.kind is not ErrorKind.UNKNOWN_MESSAGE]
    assert errors == []
    assert replay.summary.errors == {}
    assert any(isinstance(e, Resynced) for e in events) or name in {"KRAKEN.ws.48.0", "KRAKEN.ws.49.0"}
    if name.startswith("KRAKEN."):
        assert replay.captures[0].venue == "kraken-v1"
    if name == "KRAKEN_FUTURES.ws.1.0":  # its subscribe frames name inverse products (PI_/FI_)
        assert replay.captures[0].venue == "kraken-futures-inverse"
        assert sum(isinstance(e, Resynced) for e in events) == 10
    if name == "GEMINI.ws.1.0":  # the archived market data v2 URL
        assert replay.captures[0].venue == "gemini-v2"
    if name == "KRAKEN.ws.50.0":
        assert sum(replay.summary.checksums_ok.values()) > 4000
        assert sum(replay.summary.checksum_mismatches.values()) == 0
        assert all(e.checksum is not None for e in events if isinstance(e, BookSnapshot))
    if name == "BINANCE.ws.1.0":  # every recorded stream, kline_1m included, is understood
        assert replay.summary.unsupported_channels == {}
        assert replay.summary.not_supported.get("binance", 0) == 0
        assert sum(isinstance(e, Candle) for e in events) == 2
        assert replay.summary.rest_bodies == 4
    if name == "BITMEX.ws.1.0":
        # XRPU21's expiry day is not in its name: the recorded instruments list says it
        futures = {e.symbol for e in events if isinstance(e, BookSnapshot) and e.symbol.endswith("-20210924")}
        assert futures == {"XRP-BTC-20210924", "TRX-BTC-20210924"}


@needs_recordings
@pytest.mark.recordings
def test_cli_replays_the_whole_recordings_folder() -> None:
    proc = run_wsmux("replay", str(RECORDINGS))
    assert proc.returncode == (3 if UNSUPPORTED else 0), proc.stderr  # unsupported venues: named, skipped
    assert "Traceback" not in proc.stderr
    for venue in UNSUPPORTED.values():
        assert f"venue '{venue}' is not supported by wsmux yet" in proc.stderr
    for venue in (
        "binance", "coinbase", "kraken-v1", "deribit", "bitmex", "gemini-v2", "kraken-futures-inverse", "kucoin"
    ):
        assert f"{venue}: errors 0" in proc.stdout
    assert "binance: channel not supported" not in proc.stdout  # kline_1m became candles
    assert "malformed" not in proc.stdout.lower()


@needs_recordings
@pytest.mark.recordings
def test_cli_replays_each_supported_file_alone_with_no_flags() -> None:
    for name in SUPPORTED:
        proc = run_wsmux("replay", str(RECORDINGS / name))
        assert proc.returncode == 0, (name, proc.stderr)
        assert "errors 0" in proc.stdout and "errors 1" not in proc.stdout, name
