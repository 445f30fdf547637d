"""How a fault during a measurement reaches the verdicts: the recorder checked against the
Jobs' own final status, Kueue's histogram across a restart, and INVALID figures."""

from __future__ import annotations

from pytest_k8sai.core.verdicts import VerdictLog
from pytest_k8sai.kueue.runs import AttemptScrape, attempt_histogram_share, reconcile
from pytest_k8sai.measure.joblatency import JobRecord
from pytest_k8sai.measure.prometheus import Histogram


def _rec(name: str, done: bool) -> JobRecord:
    return JobRecord(name=name, created=0.0, completed=1.0 if done else None)


def test_reconcile_agrees_when_the_recorder_saw_every_completion():
    records = {"a": _rec("a", True), "b": _rec("b", True)}
    assert reconcile(records, {"a": True, "b": True}) == []


def test_reconcile_names_lost_phantom_unseen_and_invented_samples():
    records = {"a": _rec("a", True), "b": _rec("b", False), "x": _rec("x", True)}
    final = {"a": False, "b": True, "c": True}
    problems = reconcile(records, final)
    assert problems == [
        "Jobs the recorder never saw: 1 (c)",
        "recorded Jobs the API does not have: 1 (x)",
        "Jobs Complete in the API but not in the recorder: 1 (b)",
        "Jobs recorded complete that the API says are not: 1 (a)",
    ]


def _h(count: float) -> Histogram:
    return Histogram("h", ((0.01, count), (float("inf"), count)), count, count * 0.005)


def test_histogram_share_is_the_difference_while_kueue_runs_on():
    share, why = attempt_histogram_share(AttemptScrape(_h(10), 100.0), AttemptScrape(_h(25), 100.0))
    assert why == "" and share is not None and share.count == 15


def test_histogram_share_across_a_kueue_restart_is_refused_with_the_reason():
    # More attempts after the restart than before it: only the start time shows the reset.
    share, why = attempt_histogram_share(AttemptScrape(_h(10), 100.0), AttemptScrape(_h(40), 160.0))
    assert share is None and "Kueue restarted during the run" in why and "160.0" in why
    # No attempt before the run, then a restart: the first process's attempts are lost.
    share, why = attempt_histogram_share(AttemptScrape(None, 100.0), AttemptScrape(_h(40), 160.0))
    assert share is None and "Kueue restarted" in why
    share, why = attempt_histogram_share(AttemptScrape(None, 100.0), AttemptScrape(_h(40), 100.0))
    assert why == "" and share is not None and share.count == 40


def test_invalid_figure_is_neither_passed_nor_failed_and_says_why():
    log = VerdictLog(None)
    v = log.check(
        "p99",
        900.0,
        unit="ms",
        threshold=100.0,
        op="<=",
        n=50,
        source="log",
        invalid="Job watch down 4.0 s",
    )
    assert v.verdict == "INVALID" and v.passed and not log.failed
    assert v.describe().startswith("INVALID, not judged (Job watch down 4.0 s): p99: measured 900")


def test_heartbeat_finds_a_refused_api_and_a_frozen_one():
    import time

    from pytest_k8sai.measure.heartbeat import ApiHeartbeat

    script = ["ok", "refused", "refused", "ok", "slow", "ok"]
    t0 = time.monotonic()

    def read() -> None:
        step = script.pop(0) if script else "ok"
        if step == "refused":
            raise ConnectionRefusedError("refused")
        if step == "slow":
            time.sleep(0.3)

    hb = ApiHeartbeat(read, interval_s=0.01, stall_s=0.2).start()
    deadline = time.monotonic() + 5
    while script and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    hb.stop()
    refused, frozen = hb.gaps()
    assert refused.kind == "API" and refused.failures == 2 and refused.end is not None
    assert "ConnectionRefusedError" in refused.cause and refused.start >= t0
    assert frozen.failures == 1 and frozen.end - frozen.start >= 0.3
    assert "a one-object list took" in frozen.cause
    assert "API server unanswered" in frozen.describe()


def test_gaps_are_summed_up_in_one_sentence():
    from pytest_k8sai.measure.joblatency import WatchGap, summarize_gaps

    gaps = [
        WatchGap("API", 10.0, 17.3, cause="refused", failures=4),
        WatchGap("Pod", 9.8, 17.6, cause="ProtocolError", failures=3),
        WatchGap("Workload", 9.8, 21.8, cause="ProtocolError", failures=3),
        WatchGap("Workload", 22.0, 22.1, cause="410", relisted=True, missed=2),
        WatchGap("Job", 30.0, None, cause="refused"),
    ]
    assert summarize_gaps(gaps) == (
        "API server unanswered 7.3 s (longest of 1); watches down up to not recovered "
        "(Job, Pod, Workload); 1 relists after an expired resourceVersion, 2 objects changed "
        "unseen"
    )
    assert summarize_gaps([]) == ""
