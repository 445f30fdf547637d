"""CPU seconds and peak RSS from /proc, on a fake /proc and on this process."""

from __future__ import annotations

import os

import pytest

from pytest_k8sai.scale.procstats import ProcStats, read_sample

TCK = os.sysconf("SC_CLK_TCK")


def _proc(root, pid, utime, stime, start=777, hwm_kb=1000, comm="kueue) manager"):
    d = root / str(pid)
    d.mkdir(exist_ok=True)
    rest = ["0"] * 49  # fields 4..52 of /proc/<pid>/stat
    rest[14 - 4], rest[15 - 4], rest[22 - 4] = str(utime), str(stime), str(start)
    (d / "stat").write_text(f"{pid} ({comm}) S " + " ".join(rest) + "\n")
    (d / "status").write_text(f"Name:\tkueue\nVmHWM:\t  {hwm_kb} kB\nVmRSS:\t  10 kB\n")


def test_a_stat_line_with_odd_command_names_parses(tmp_path):
    _proc(tmp_path, 42, utime=3 * TCK, stime=TCK, hwm_kb=2048)
    s = read_sample(42, tmp_path)
    assert s.cpu_s == pytest.approx(4.0) and s.hwm_bytes == 2048 * 1024 and s.start_ticks == 777
    assert read_sample(43, tmp_path) is None


def test_cpu_is_end_minus_start_and_peak_is_the_highest_seen(tmp_path):
    _proc(tmp_path, 10, utime=TCK, stime=0, hwm_kb=500)
    _proc(tmp_path, 11, utime=0, stime=0)
    ps = ProcStats({"kueue": 10, "etcd": 11, "apiserver": 12}, tmp_path)
    ps.start()
    _proc(tmp_path, 10, utime=4 * TCK, stime=TCK, hwm_kb=900)
    ps.sample()
    _proc(tmp_path, 10, utime=5 * TCK, stime=TCK, hwm_kb=900)
    (tmp_path / "11" / "stat").unlink()  # etcd exits between samples
    out = ps.stop()
    assert out["kueue"].cpu_s == pytest.approx(5.0)
    assert out["kueue"].peak_rss_bytes == 900 * 1024 and out["kueue"].note == ""
    assert out["etcd"].cpu_s == 0 and "gone at the end" in out["etcd"].note
    assert out["apiserver"].cpu_s is None and out["apiserver"].peak_rss_bytes is None
    assert out["apiserver"].note == "pid 12 (apiserver) was not running at the start"


def test_a_reused_pid_is_a_note_not_a_figure(tmp_path):
    _proc(tmp_path, 20, utime=TCK, stime=0, start=5)
    ps = ProcStats({"kwok": 20}, tmp_path)
    ps.start()
    _proc(tmp_path, 20, utime=9 * TCK, stime=0, start=6)  # another process got pid 20
    out = ps.stop()["kwok"]
    assert out.cpu_s == 0 and "another process" in out.note


def test_this_process_with_periodic_sampling():
    ps = ProcStats({"self": os.getpid()})
    with ps.sampling(0.01):
        sum(i * i for i in range(200_000))
    out = ps.stop()["self"]
    assert out.cpu_s is not None and out.cpu_s >= 0
    assert out.peak_rss_bytes and out.peak_rss_bytes > 1_000_000 and out.note == ""
