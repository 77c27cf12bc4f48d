"""The stage clock: seconds summed per stage across threads, and a stage it does not know refused by name."""

from __future__ import annotations

import itertools
import threading

import pytest

from translandseg_hf.inference import stages
from translandseg_hf.inference.stages import STAGES, StageClock


def test_seconds_add_up_per_stage_over_threads(monkeypatch):
    per_thread = threading.local()  # each thread's own ticks: every stage lasts exactly 2 s, however threads interleave

    def perf_counter():
        if not hasattr(per_thread, "ticks"):
            per_thread.ticks = itertools.count(step=2.0)
        return next(per_thread.ticks)
    monkeypatch.setattr(stages.time, "perf_counter", perf_counter)
    clock = StageClock()

    def work():
        with clock("write"):
            pass
    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with clock("read"):
        pass
    assert clock.seconds["write"] == 6.0 and clock.seconds["read"] == 2.0
    assert set(clock.seconds) == set(STAGES) and clock.seconds["cog"] == 0.0


def test_an_unknown_stage_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown stage 'writing'; stages are read, scale, model, blend, write, "):
        with StageClock()("writing"):
            pass
