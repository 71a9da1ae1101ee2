"""What every command that writes a file checks first: that no other run writes it, and that two of its
own outputs are not one file.

`OutputLock` is the one lock of an output (label, import-labels, predict): `fcntl.flock` on `OUT.lock`.
`distinct_files` refuses two of a command's files that resolve to one (the same name, `./x` and `x`, a
symbolic link, a hard link) before anything is written: an output over another output, or over the input.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from llm2edge.errors import BusyError, ConfigError


def lock_path(path: str | Path) -> Path:
    """The lock file of an output file: `OUT.lock` next to it."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


class OutputLock:
    """An exclusive lock on an output file for a whole run: `fcntl.flock` on `OUT.lock`, which holds the pid.

    A second run on the same file fails at once with BusyError naming the holder's pid, instead of doing
    (and paying for) all the work again or mixing its rows with the first run's. The kernel drops the lock
    when its process dies, kill -9 included, so a crash never leaves a stale lock; the file is removed on
    release. Where fcntl does not exist (Windows) runs are not locked. `what` names the command in the
    message and `option` the option that names the file (`another label run ... use another --out`).
    """

    def __init__(self, path: str | Path, *, what: str = "label", option: str = "--out") -> None:
        self.target = Path(path)
        self.path = lock_path(path)
        self.what = what
        self.option = option
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        """Take the lock, or raise BusyError naming the pid that holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:  # a read-only folder: the output could not be written either; name it
                exc.filename = str(self.target)
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise BusyError(f"{self.target}: another {self.what} run (pid {holder}) is writing this "
                                f"file; wait for it to end, or use another {self.option}") from None
            try:  # the holder may have removed the file between our open and flock: lock the current one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still locked: a waiter then retries on a fresh file
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _identity(path: Path) -> tuple[str, object]:
    """What makes two names one file: (device, inode) of an existing file, else the resolved path."""
    try:
        st = path.stat()
    except OSError:
        return ("path", str(path.resolve()))
    return ("inode", (st.st_dev, st.st_ino))


def distinct_files(files: Mapping[str, str | Path | None]) -> None:
    """ConfigError when two of the named files (option -> path; None or '-' skipped) are one file: the
    same name, `./x` and `x`, or a symbolic or hard link to it. Call it before anything is written."""
    seen: dict[tuple[str, object], str] = {}
    for option, path in files.items():
        if path is None or str(path) == "-":
            continue
        p = Path(path)
        keys = {_identity(p), ("path", str(p.resolve()))}
        for key in keys:
            if key in seen:
                raise ConfigError(f"{option} {path} is the same file as {seen[key]}: give each its own "
                                  "file")
        for key in keys:
            seen[key] = f"{option} {path}"
