"""The one thread resolver: how many threads a command uses, from the CPUs this process may really use.

`resolve_threads` gives every command's `--threads` the same meaning: the number asked for, else 1 per
process under a multi-process launcher (torchrun, `accelerate launch`), else the CPUs this process may use
(its CPU affinity and cgroup quota, never the host's core count).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from llm2edge.checks import check_threads

_CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Environment variables a multi-process launcher sets: processes on this machine, then in the whole job.
LAUNCHER_ENV = ("LOCAL_WORLD_SIZE", "WORLD_SIZE")


def _read(path: Path) -> str | None:
    """A small file's stripped text, or None if it cannot be read."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_paths() -> dict[str, str]:
    """This process's cgroup path per controller from /proc/self/cgroup ('' is the v2 unified one)."""
    text = _read(Path("/proc/self/cgroup")) or ""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for ctrl in parts[1].split(",") if parts[1] else [""]:
                paths[ctrl] = parts[2]
    return paths


def _quota_v2(max_text: str | None) -> float | None:
    """CPUs allowed by a cgroup v2 `cpu.max` line ('max 100000' means no limit)."""
    if not max_text:
        return None
    fields = max_text.split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _quota_v1(quota_text: str | None, period_text: str | None) -> float | None:
    """CPUs allowed by cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 means no limit)."""
    try:
        quota, period = int(quota_text or ""), int(period_text or "")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit() -> float | None:
    """The CPU quota of this process's cgroup (v2, then v1), or None when there is none."""
    paths = _cgroup_paths()
    limits: list[float] = []
    if "" in paths:  # cgroup v2: check our own group and its ancestors up to the mount root
        rel = Path(paths[""].lstrip("/"))
        for folder in [_CGROUP_ROOT / rel, *(_CGROUP_ROOT / p for p in rel.parents)]:
            value = _quota_v2(_read(folder / "cpu.max"))
            if value is not None:
                limits.append(value)
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        base = _CGROUP_ROOT / name
        if not base.is_dir():
            continue
        rel = Path(paths.get("cpu", "/").lstrip("/"))
        for folder in (base / rel, base):
            value = _quota_v1(_read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us"))
            if value is not None:
                limits.append(value)
                break
        break
    return min(limits) if limits else None


def affinity_cpus() -> int:
    """How many CPUs this process may be scheduled on (os.sched_getaffinity where it exists)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def available_cpus() -> int:
    """CPUs this process may use: the smaller of its CPU affinity and its cgroup quota (at least 1)."""
    count = affinity_cpus()
    limit = cgroup_cpu_limit()
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return max(1, count)


def launcher_processes() -> int:
    """Processes a launcher (torchrun, `accelerate launch`) runs on this machine: LOCAL_WORLD_SIZE, else
    WORLD_SIZE, else 1."""
    for name in LAUNCHER_ENV:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return 1


def resolve_threads(threads: int | None = None) -> int:
    """The threads a command uses: `threads` if given (an integer >= 1, else ConfigError), else 1 per process
    under a multi-process launcher, else `available_cpus()`."""
    check_threads(threads)
    if threads is not None:
        return int(threads)
    return 1 if launcher_processes() > 1 else available_cpus()
