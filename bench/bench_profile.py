"""Where the time goes per message on the hot path, two ways.

1. Stage timings (no profiler, so no distortion): the same frames through
   ever longer pipelines, best of ``repeat``; each stage's cost is the
   difference with the previous one:

   * ``json``      — ``orjson.loads`` of every frame (the parse floor);
   * ``adapter``   — ``adapter.parse(frame, recv_ns)``: parse + normalize +
     event construction;
   * ``feed``      — ``Feed.on_frame`` with a no-op sink: + sequence checks,
     book apply, checksums;
   * ``dispatch``  — the multiplexer's ``_deliver`` (data-quality gate,
     circuit breaker, trade-id sequencer) and ``_dispatch`` routing every
     event to a :class:`wsmux.Stream` with one sync callback (the callback
     counts): + checks, routing, stream accounting, callback.

2. ``cProfile`` of ``Feed.on_frame`` + dispatch, self time per function,
   grouped into parse / adapter / events / sync / book / checksum / pipeline
   / stream / callback (profiling inflates call-heavy code; read the
   shares, trust the stage timings for absolute numbers).

Run::

    .venv/bin/python bench/bench_profile.py [--venue binance] [--steps 20000] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from benchlib import BenchResult, Script, format_results, generate_script, replay_script

from wsmux.model import Event
from wsmux.multiplexer import Multiplexer
from wsmux.stream import Stream

__all__ = ["cprofile_categories", "stage_timings"]


def _noop(event: Event) -> None:
    return None


def _dispatcher(script: Script) -> tuple[Callable[[Event], None], list[int]]:
    """The multiplexer's dispatch into one stream with a counting callback."""
    mux = Multiplexer()
    stream = Stream(tuple(script.subscriptions), name="bench")
    count = [0]

    def callback(event: Event) -> None:
        count[0] += 1

    stream.on(Event, callback)
    for sub in script.subscriptions:
        mux._routes.setdefault((sub.venue, sub.channel, sub.symbol), []).append(stream)
    mux._venue_streams.setdefault(script.venue, []).append(stream)
    mux._streams.append(stream)
    # ``_deliver`` (quality gate, circuit breaker, trade sequencer, then
    # ``_dispatch``) is what a connection's events go through; older
    # multiplexers dispatch directly.
    deliver: Callable[[Event], None] = getattr(mux, "_deliver", mux._dispatch)
    return deliver, count


def _time(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def stage_timings(script: Script, *, repeat: int = 3) -> list[BenchResult]:
    """µs/frame of each cumulative stage, and each stage's own share."""
    n = len(script.data)
    recv_ns = script.generated_ns or time.time_ns()  # as fresh as the frames (see Script.generated_ns)
    _, frames = replay_script(script, _noop)
    loads = orjson.loads

    def run_json() -> None:
        for f in frames:
            loads(f)

    def run_adapter() -> None:
        feed, fr = replay_script(script, _noop)
        parse = feed.adapter.parse
        t0 = time.perf_counter()
        for f in fr:
            parse(f, recv_ns)
        timings.append(time.perf_counter() - t0)

    def run_feed(sink: Callable[[Event], object]) -> Callable[[], None]:
        def run() -> None:
            feed, fr = replay_script(script, sink)
            on_frame = feed.on_frame
            t0 = time.perf_counter()
            for f in fr:
                on_frame(f, recv_ns)
            timings.append(time.perf_counter() - t0)

        return run

    t_json = _time(run_json, repeat)
    timings: list[float] = []
    for _ in range(repeat):
        run_adapter()
    t_adapter = min(timings)
    timings = []
    for _ in range(repeat):
        run_feed(_noop)()
    t_feed = min(timings)
    timings = []
    dispatch_note = ""
    try:
        for _ in range(repeat):
            dispatch, _count = _dispatcher(script)
            run_feed(dispatch)()
        t_dispatch = min(timings)
    except Exception as exc:  # the multiplexer's internals moved: report, keep the rest
        t_dispatch = float("nan")
        dispatch_note = f"dispatch stage skipped: {type(exc).__name__}: {exc}"
    stages = [
        ("json", t_json, t_json),
        ("adapter", t_adapter, t_adapter - t_json),
        ("feed", t_feed, t_feed - t_adapter),
        ("dispatch", t_dispatch, t_dispatch - t_feed),
    ]
    results = []
    for name, total, own in stages:
        results.append(
            BenchResult(
                f"stages.{script.venue}.{name}",
                {"us_per_msg": total / n * 1e6, "msgs_per_s": n / total if total == total else float("nan")},
                {"own_us_per_msg": round(own / n * 1e6, 3), "count": n, "note": f"own {own / n * 1e6:.2f} µs"},
            )
        )
    if dispatch_note:
        results[-1].info["error"] = dispatch_note
    return results


CATEGORIES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("parse (orjson)", lambda f, fn: "loads" in fn and ("orjson" in fn or f == "~")),
    ("events (attrs __init__)", lambda f, fn: "attrs generated" in f or (fn == "__init__" and "model.py" in f)),
    ("adapter normalize", lambda f, fn: "/wsmux/exchanges/" in f),
    ("checksum", lambda f, fn: "/wsmux/book/checksum" in f or "crc32" in fn),
    ("sync (BookSync)", lambda f, fn: "/wsmux/book/_sync" in f or "/wsmux/book/_l3sync" in f),
    ("book apply", lambda f, fn: "/wsmux/book/" in f or "sortedcontainers" in f),
    ("pipeline (Feed)", lambda f, fn: "/wsmux/_pipeline" in f),
    ("dispatch (multiplexer)", lambda f, fn: "/wsmux/multiplexer" in f),
    ("reliability (gate, breaker, sequencer)", lambda f, fn: "/wsmux/_reliability" in f or "/wsmux/reliability" in f),
    ("stream (Stream._put)", lambda f, fn: "/wsmux/stream" in f),
    ("callback", lambda f, fn: "bench_profile" in f),
]


def _category(filename: str, funcname: str) -> str:
    for name, match in CATEGORIES:
        if match(filename, funcname):
            return name
    return "other (builtins: float(), isinstance, len...)"


def cprofile_categories(script: Script, *, top: int = 25) -> tuple[dict[str, float], str]:
    """Self time per category (µs/frame under the profiler) and the top functions."""
    dispatch, _count = _dispatcher(script)
    feed, frames = replay_script(script, dispatch)
    on_frame = feed.on_frame
    recv_ns = script.generated_ns or time.time_ns()  # as fresh as the frames (see Script.generated_ns)
    profiler = cProfile.Profile()
    profiler.enable()
    for f in frames:
        on_frame(f, recv_ns)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    per: dict[str, float] = {}
    for (filename, _line, funcname), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        cat = _category(filename, funcname)
        per[cat] = per.get(cat, 0.0) + tottime
    n = len(frames)
    per_us = {k: v / n * 1e6 for k, v in sorted(per.items(), key=lambda kv: -kv[1])}
    import io

    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(top)
    return per_us, buf.getvalue()


def cprofile_recording(name: str, *, top: int = 25) -> tuple[dict[str, float], str]:
    """Like :func:`cprofile_categories`, over a real recording (``KRAKEN.ws.50.0``...)."""
    import bench_feed

    rec = bench_feed.load_recording(bench_feed.recordings_dir(), name, bench_feed.RECORDINGS[name])
    profiler = cProfile.Profile()
    profiler.enable()
    bench_feed.bench_recording(rec, repeat=1)
    profiler.disable()
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    per: dict[str, float] = {}
    for (filename, _line, funcname), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        if "bench_feed" in filename or "cProfile" in filename:
            continue
        cat = _category(filename, funcname)
        per[cat] = per.get(cat, 0.0) + tottime
    n = len(rec.frames)
    import io

    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(top)
    return {k: v / n * 1e6 for k, v in sorted(per.items(), key=lambda kv: -kv[1])}, buf.getvalue()


def _print_profile(per: dict[str, float], text: str) -> None:
    total = sum(per.values())
    print(f"\ncProfile self time per frame (total {total:.2f} µs under the profiler):")
    for cat, us in per.items():
        print(f"  {cat:<46}{us:8.2f} µs  {us / total:6.1%}")
    print(text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venue", action="append", default=None)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--recording", action="append", default=None, help="e.g. KRAKEN.ws.50.0")
    args = parser.parse_args(argv)
    for name in args.recording or []:
        print(f"\n=== recording {name}")
        _print_profile(*cprofile_recording(name, top=args.top))
    for venue in args.venue or ([] if args.recording else ["binance"]):
        script = generate_script(venue, args.steps)
        print(f"\n=== {venue}: {len(script.data):,} frames, {script.events_by_type}")
        print(format_results(stage_timings(script, repeat=args.repeat)))
        _print_profile(*cprofile_categories(script, top=args.top))


if __name__ == "__main__":
    main()
