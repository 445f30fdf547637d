"""The submission pacer on a fake clock: schedule, QPS and burst, lag, CPU share."""

from __future__ import annotations

import math

import pytest

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.scale.submit import Pacer, TokenBucket


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.cpu = 0.0

    def __call__(self):
        return self.now

    def sleep(self, dt):
        assert dt > 0
        self.now += dt


def _pacer(clock, qps, burst):
    return Pacer(qps, burst, clock=clock, sleep=clock.sleep, cpu_clock=lambda: clock.cpu)


def test_an_unbinding_limit_sends_on_schedule_without_lag():
    clock = FakeClock()
    offsets = [0.0, 0.5, 0.5, 1.25, 3.0]
    rep = _pacer(clock, 1000, 10).run(offsets, lambda i: None)
    assert [s.sent_s for s in rep.sent] == pytest.approx(offsets)
    assert rep.lag_p50_s == 0 and rep.lag_p99_s == 0 and rep.lag_max_s == 0
    assert rep.wall_s == pytest.approx(3.0)
    assert rep.submissions_per_s == pytest.approx(5 / 3.0)


def test_qps_and_burst_hold():
    clock = FakeClock()
    rep = _pacer(clock, 10, 5).run([0.0] * 25, lambda i: None)
    sent = [s.sent_s for s in rep.sent]
    # The burst goes at once; then one token every 1/qps.
    assert sent[:5] == pytest.approx([0.0] * 5)
    assert sent[5:] == pytest.approx([0.1 * k for k in range(1, 21)])
    for i, t in enumerate(sent):  # never more than burst + qps * window in any window
        in_window = sum(1 for u in sent[i:] if u - t <= 1.0 + 1e-9)
        assert in_window <= 5 + 10 * 1.0 + 1
    assert rep.lag_max_s == pytest.approx(0, abs=1e-9)  # waiting for tokens is not lag
    assert rep.submissions_per_s == pytest.approx(25 / 2.0)


def test_a_bucket_refills_up_to_burst_only():
    clock = FakeClock()
    offsets = [0.0] * 3 + [10.0] * 6  # 10 s idle refills only 3 tokens, not 100
    rep = _pacer(clock, 10, 3).run(offsets, lambda i: None)
    assert [s.sent_s for s in rep.sent][3:] == pytest.approx([10, 10, 10, 10.1, 10.2, 10.3])


def test_a_slow_send_is_lag_and_cpu_share_is_measured():
    clock = FakeClock()

    def send(i):
        clock.now += 0.05  # each create takes 50 ms
        clock.cpu += 0.01

    offsets = [0.01 * i for i in range(10)]  # asks for 100/s; the sender manages 20/s
    rep = _pacer(clock, 1000, 100).run(offsets, send)
    lags = [s.lag_s for s in rep.sent]
    assert lags[0] == pytest.approx(0)
    assert lags[1:] == pytest.approx([0.04 * k for k in range(1, 10)])
    assert rep.lag_max_s == pytest.approx(0.36)
    assert rep.wall_s == pytest.approx(0.5)
    assert rep.submissions_per_s == pytest.approx(20)
    assert rep.cpu_busy_share == pytest.approx(0.1 / 0.5)


def test_lag_is_what_slow_sends_add_to_the_throttled_schedule():
    clock = FakeClock()

    def send(i):
        clock.now += 0.15  # slower than the 0.1 s the limit allows

    rep = _pacer(clock, 10, 1).run([0.0] * 5, send)
    assert [s.ready_s for s in rep.sent] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert [s.sent_s for s in rep.sent] == pytest.approx([0.0, 0.15, 0.3, 0.45, 0.6])
    assert [s.lag_s for s in rep.sent] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert rep.lag_p50_s == pytest.approx(0.1)


def test_early_wakeups_are_slept_again():
    clock = FakeClock()
    naps = []

    def short_sleep(dt):
        naps.append(dt)
        clock.now += dt / 2  # wakes halfway

    pacer = Pacer(100, 1, clock=clock, sleep=short_sleep, cpu_clock=lambda: 0.0)
    rep = pacer.run([1.0], lambda i: None)
    assert rep.sent[0].sent_s >= 1.0 - 1e-6 and len(naps) > 1


def test_bad_input_is_refused():
    clock = FakeClock()
    with pytest.raises(K8saiError, match="sorted"):
        _pacer(clock, 10, 1).run([1.0, 0.5], lambda i: None)
    with pytest.raises(K8saiError, match="qps > 0, burst >= 1"):
        TokenBucket(0, 1, 0.0)
    rep = _pacer(clock, 10, 1).run([], lambda i: None)
    assert rep.sent == [] and math.isnan(rep.lag_p50_s)


def test_concurrent_senders_overlap_slow_creates():
    # A create that takes 30 ms, 60 at once: one sender lags ~1.8 s at the end; 8 senders
    # issue them 8 at a time, so the last waits ~7 rounds of 30 ms. Real threads, real clock.
    import threading
    import time

    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow(i):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.03)
        with lock:
            in_flight[0] -= 1

    serial = Pacer(10_000, 100).run([0.0] * 60, slow)
    pooled = Pacer(10_000, 100, workers=8).run([0.0] * 60, slow)
    assert peak[0] == 8  # never more than the workers at once
    assert serial.workers == 1 and pooled.workers == 8
    assert serial.lag_max_s > 1.5
    assert pooled.lag_max_s < serial.lag_max_s / 4
    assert len(pooled.sent) == 60 and len(pooled.send_durations_s) == 60
    assert min(pooled.send_durations_s) >= 0.03  # a send's own time, kept apart from lag
    assert pooled.wall_s >= 60 / 8 * 0.03  # the wall ends with the last response


def test_a_failing_send_stops_the_run_and_is_raised():
    clock = FakeClock()

    def send(i):
        if i == 2:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _pacer(clock, 1000, 10).run([0.0, 0.1, 0.2, 0.3, 0.4], send)


def test_workers_must_be_positive():
    with pytest.raises(K8saiError, match="workers=0"):
        Pacer(10, 1, workers=0)
