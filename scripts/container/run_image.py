#!/usr/bin/env python3
"""Run a container image's entrypoint: `podman run` where it works, else chroot into `podman image mount`.

    scripts/container/run_image.py [--chroot|--podman] [--cpus N] [-v HOST:CTR[:ro]]...
                                   [--entrypoint EXE] IMAGE [ARGS...]

Some machines (nested sandboxes) cannot start OCI containers: crun fails on setrlimit. There the image's
files are mounted (`podman image mount`) and its entrypoint runs under chroot as the image's user, with the
image's env and workdir, in a private mount + pid namespace (proc, sys, dev, /tmp and the -v binds vanish
when it exits). `--cpus N` sets a CPU quota: podman's own flag, or in chroot mode a scratch cgroup with
that quota (cgroup v1 cpu.cfs_quota_us or v2 cpu.max), so the runtime's thread sizing sees a real limit.
stdin, stdout and the exit status pass through. Needs root in chroot mode. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
PODMAN_START_FAILED = (125, 126, 127)  # podman/runtime errors: the command itself never ran


def image_config(image: str) -> dict:
    """The image's OCI config (Entrypoint, Cmd, Env, User, WorkingDir)."""
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{json .Config}}", image],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out) or {}


def resolve_user(root: Path, user: str) -> tuple[int, int, str]:
    """uid, gid and home of an image user spec ('', 'name', 'uid', 'name:group', 'uid:gid')."""
    name, _, group = (user or "0").partition(":")
    uid = gid = 0
    home = "/root"
    passwd = root / "etc" / "passwd"
    entries = [ln.split(":") for ln in passwd.read_text().splitlines() if ln.count(":") >= 6] \
        if passwd.is_file() else []
    for e in entries:
        if e[0] == name or e[2] == name:
            uid, gid, home = int(e[2]), int(e[3]), e[5]
            break
    else:
        if not name.isdigit():
            raise SystemExit(f"run_image: user {name!r} not found in {passwd}")
        uid = int(name)
    if group:
        gid = int(group) if group.isdigit() else next(
            (int(g.split(":")[2]) for g in (root / "etc" / "group").read_text().splitlines()
             if g.split(":")[0] == group), gid)
    return uid, gid, home


def cpu_cgroup(cpus: float) -> tuple[Path, Path]:
    """A fresh cgroup with a CPU quota of `cpus`; returns (its folder, the file a pid is written to)."""
    period = 100_000
    quota = max(1000, int(cpus * period))
    name = f"llm2edge-run-{uuid.uuid4().hex[:8]}"
    if (CGROUP / "cgroup.controllers").is_file():  # v2 unified: the cpu controller must be delegated
        with contextlib.suppress(OSError):
            (CGROUP / "cgroup.subtree_control").write_text("+cpu\n")
        folder = CGROUP / name
        folder.mkdir()
        (folder / "cpu.max").write_text(f"{quota} {period}\n")
        return folder, folder / "cgroup.procs"
    folder = CGROUP / "cpu" / name  # v1
    folder.mkdir()
    (folder / "cpu.cfs_period_us").write_text(f"{period}\n")
    (folder / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    return folder, folder / "cgroup.procs"


def run_podman(image: str, args: list[str], cpus: str | None, volumes: list[str],
               entrypoint: str | None = None) -> int:
    """`podman run --rm -i` with the given quota and volumes; returns its exit status."""
    cmd = ["podman", "run", "--rm", "-i", "--network=none"]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    if cpus:
        cmd += ["--cpus", cpus]
    for v in volumes:
        cmd += ["-v", v]
    return subprocess.run([*cmd, image, *args]).returncode


def run_chroot(image: str, args: list[str], cpus: str | None, volumes: list[str],
               entrypoint: str | None = None) -> int:
    """Run the entrypoint by chroot into the mounted image; returns its exit status."""
    if os.geteuid() != 0:
        raise SystemExit("run_image: chroot mode needs root")
    cfg = image_config(image)
    root = Path(subprocess.run(["podman", "image", "mount", image], check=True, capture_output=True,
                               text=True).stdout.strip())
    uid, gid, home = resolve_user(root, cfg.get("User") or "")
    entry = [entrypoint] if entrypoint else (cfg.get("Entrypoint") or [])
    argv = [*entry, *(args or ([] if entrypoint else cfg.get("Cmd") or []))]
    if not argv:
        raise SystemExit(f"run_image: {image} has no entrypoint or command")
    env = [e for e in cfg.get("Env") or [] if not e.startswith("HOME=")] + [f"HOME={home}"]
    workdir = cfg.get("WorkingDir") or "/"
    q = shlex.quote
    r = q(str(root))
    lines = ["set -e", f"mount --rbind /sys {r}/sys", f"mount --rbind /dev {r}/dev",
             f"mount -t tmpfs tmpfs {r}/tmp"]
    if home != "/" and (root / home.lstrip("/")).is_dir():  # the image is read-only: a writable HOME
        lines.append(f"mount -t tmpfs -o mode=0755,uid={uid},gid={gid} tmpfs {r}{q(home)}")
    for spec in volumes:
        host, _, rest = spec.partition(":")
        ctr, _, opts = rest.partition(":")
        if not host or not ctr.startswith("/"):
            raise SystemExit(f"run_image: bad volume {spec!r} (want HOST:/CTR[:ro])")
        if not (root / ctr.lstrip("/")).exists():
            raise SystemExit(f"run_image: {ctr} does not exist in {image} and its mounted files are "
                             "read-only in chroot mode: mount at an existing folder (e.g. /mnt, /bundle)")
        target = f"{r}{q(ctr)}"
        lines.append(f"mount --bind {q(str(Path(host).resolve()))} {target}")
        if "ro" in opts.split(","):
            lines.append(f"mount -o remount,bind,ro {target}")
    inner = "cd " + q(workdir) + ' && exec "$@"'
    lines.append(f"exec chroot --userspec={uid}:{gid} {r} /usr/bin/env -i {' '.join(q(e) for e in env)} "
                 f"/bin/sh -c {q(inner)} sh {' '.join(q(a) for a in argv)}")
    script = "\n".join(lines)
    cg_folder = None
    preexec = None
    if cpus:
        cg_folder, procs = cpu_cgroup(float(cpus))

        def preexec() -> None:  # join the quota cgroup before unshare: every descendant inherits it
            procs.write_text(f"{os.getpid()}\n")

    try:
        return subprocess.run(["unshare", "--mount", "--pid", "--fork", f"--mount-proc={root}/proc",
                               "--propagation", "private", "sh", "-c", script],
                              preexec_fn=preexec).returncode
    finally:
        if cg_folder is not None:
            with contextlib.suppress(OSError):
                cg_folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the image once."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--chroot", dest="mode", action="store_const", const="chroot")
    mode.add_argument("--podman", dest="mode", action="store_const", const="podman")
    p.add_argument("--cpus", help="CPU quota, e.g. 1 or 0.5")
    p.add_argument("-v", "--volume", action="append", default=[], help="HOST:/CTR[:ro] bind mount")
    p.add_argument("--entrypoint", help="run this executable instead of the image's entrypoint")
    p.add_argument("image")
    p.add_argument("args", nargs=argparse.REMAINDER)
    ns = p.parse_args(argv)
    mode = ns.mode or os.environ.get("LLM2EDGE_RUN_MODE", "auto")
    if mode in ("auto", "podman"):
        rc = run_podman(ns.image, ns.args, ns.cpus, ns.volume, ns.entrypoint)
        if mode == "podman" or rc not in PODMAN_START_FAILED:
            return rc
        print(f"run_image: podman run failed to start the container (exit {rc}); using chroot",
              file=sys.stderr)
    return run_chroot(ns.image, ns.args, ns.cpus, ns.volume, ns.entrypoint)


if __name__ == "__main__":
    sys.exit(main())
