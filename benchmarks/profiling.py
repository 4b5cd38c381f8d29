"""`--profile` for the benchmarks: a cProfile around the measured step, printed after the figures."""
from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
from typing import Iterator


@contextlib.contextmanager
def profiled(profiler: cProfile.Profile | None) -> Iterator[None]:
    """Profile the block when a profiler is given; otherwise run it untouched."""
    if profiler is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


def print_profile(profiler: cProfile.Profile | None, *, sort: str, limit: int) -> None:
    """The `limit` heaviest entries by `sort` ("tottime", "cumulative"), when profiling was on."""
    if profiler is None:
        return
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(limit)
    print(out.getvalue())
