"""The thread resolver: CPU affinity and cgroup quotas (never the host's core count), 1 per process under a
multi-process launcher, an explicit count as given."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llm2edge.edge import threads
from llm2edge.edge.threads import _quota_v1, _quota_v2, available_cpus, launcher_processes, resolve_threads
from llm2edge.errors import ConfigError


def test_at_least_one_and_at_most_the_affinity():
    n = available_cpus()
    assert n >= 1
    if hasattr(os, "sched_getaffinity"):
        assert n <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no sched_setaffinity on this OS")
def test_honours_sched_setaffinity_in_a_subprocess():
    cpu = min(os.sched_getaffinity(0))
    code = (f"import os; os.sched_setaffinity(0, {{{cpu}}}); "
            "from llm2edge.edge.threads import available_cpus; print(available_cpus())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


@pytest.mark.parametrize(("text", "expected"), [
    ("max 100000", None), ("150000 100000", 1.5), ("200000 100000", 2.0), ("50000", 0.5), ("", None),
    ("garbage", None),
])
def test_cgroup_v2_cpu_max(text, expected):
    assert _quota_v2(text) == expected


@pytest.mark.parametrize(("quota", "period", "expected"), [
    ("-1", "100000", None), ("300000", "100000", 3.0), ("", "", None),
])
def test_cgroup_v1_quota(quota, period, expected):
    assert _quota_v1(quota, period) == expected


def test_cgroup_quota_below_affinity_wins(tmp_path, monkeypatch):
    group = tmp_path / "user.slice" / "job"
    group.mkdir(parents=True)
    (tmp_path / "user.slice" / "cpu.max").write_text("max 100000\n")
    (group / "cpu.max").write_text("50000 100000\n")  # half a CPU: rounds up to 1
    monkeypatch.setattr(threads, "_CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(threads, "_cgroup_paths", lambda: {"": "/user.slice/job"})
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 8)
    assert threads.cgroup_cpu_limit() == 0.5
    assert available_cpus() == 1
    (group / "cpu.max").write_text("250000 100000\n")
    assert available_cpus() == 3
    (group / "cpu.max").write_text("max 100000\n")
    assert available_cpus() == 8


def test_cgroup_v1_layout(tmp_path, monkeypatch):
    cpu = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("200000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    monkeypatch.setattr(threads, "_CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(threads, "_cgroup_paths", lambda: {"cpu": "/docker/abc", "cpuacct": "/docker/abc"})
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 16)
    assert available_cpus() == 2


@pytest.fixture
def no_launcher(monkeypatch):
    for name in threads.LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_resolve_threads_default_is_the_cpus_this_process_may_use(no_launcher):
    assert launcher_processes() == 1
    assert resolve_threads() == resolve_threads(None) == available_cpus()
    no_launcher.setattr(threads, "available_cpus", lambda: 5)
    assert resolve_threads() == 5


def test_resolve_threads_one_per_process_under_a_launcher(no_launcher):
    no_launcher.setattr(threads, "available_cpus", lambda: 8)
    no_launcher.setenv("WORLD_SIZE", "4")  # torchrun / accelerate launch with 4 processes on this machine
    assert launcher_processes() == 4 and resolve_threads() == 1
    no_launcher.setenv("LOCAL_WORLD_SIZE", "1")  # 4 machines, one process each: this one has all its CPUs
    assert launcher_processes() == 1 and resolve_threads() == 8
    no_launcher.setenv("LOCAL_WORLD_SIZE", "garbage")
    assert launcher_processes() == 4
    assert resolve_threads(3) == 3  # an explicit count always wins


@pytest.mark.parametrize("bad", [0, -1, 2.0, "2", True])
def test_resolve_threads_rejects_bad_counts(bad):
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        resolve_threads(bad)
