"""Put a finished bundle at `--out` atomically, and clean what a killed export left beside it.

A bundle is built in a hidden staging folder next to `out` (`.NAME.tmp-PID-XXXX`, same filesystem) and then
swapped in. Where the system can exchange two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`, macOS
`renamex_np(RENAME_SWAP)`) the swap is one atomic call: at every instant `out` holds a complete bundle, the
old one or the new one, even if the process is killed (kill -9) at any point; the old bundle lands in the
staging folder and is deleted with it. Elsewhere (filesystems without exchange) two renames are used: `out`
moves aside to `.NAME.old-PID`, the new bundle moves in; a kill between the two leaves no bundle at `out`
until the next export, which puts the old one back before it starts.

Leftovers are recognised by the PID in their name: the next export (or `clean_stale`) deletes the
`.NAME.tmp-*` / `.NAME.old-*` folders of processes that no longer run, and restores an `.old-*` bundle when
`out` is missing. Folders of a still-running export are left alone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path

from llm2edge.errors import ExportError

#: Marks a staging folder: `.NAME.tmp-PID-XXXX` next to `out`.
TMP_TAG = ".tmp-"
#: Marks a bundle moved aside by the two-rename fallback: `.NAME.old-PID`.
OLD_TAG = ".old-"
#: Linux renameat2 flag and "relative to the working directory" file descriptor.
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
#: macOS renamex_np flag.
_RENAME_SWAP = 2
#: errno values that mean "this system or filesystem cannot exchange": use the two-rename fallback.
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the system or filesystem cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        fn = libc.renameat2
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        fn = libc.renamex_np
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        rc = fn(os.fsencode(a), os.fsencode(b), _RENAME_SWAP)
    else:
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, os.strerror(err), str(b))


def _owner(name: str, prefix: str) -> int | None:
    """The PID in a leftover's name (`prefix` + PID [+ '-' + suffix]), or None if it has none."""
    pid = name[len(prefix):].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _running(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (this process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clean_stale(out: Path) -> list[Path]:
    """Delete the staging and moved-aside folders of dead exports to `out`; restore `out` if it is missing.

    Returns what was removed or restored. Folders whose PID still runs are kept (an export in progress).
    """
    if not out.parent.is_dir():
        return []
    touched: list[Path] = []
    olds: list[Path] = []
    for entry in sorted(out.parent.iterdir()):
        for tag in (TMP_TAG, OLD_TAG):
            prefix = f".{out.name}{tag}"
            if not entry.name.startswith(prefix):
                continue
            pid = _owner(entry.name, prefix)
            if pid is None or _running(pid):
                continue
            if tag == OLD_TAG and entry.is_dir() and not entry.is_symlink():
                olds.append(entry)
            else:
                _remove(entry)
                touched.append(entry)
    for old in olds:
        if not out.exists() and not out.is_symlink() and (old / "manifest.json").is_file():
            old.rename(out)  # a fallback swap was killed between its renames: the old bundle goes back
        else:
            _remove(old)
        touched.append(old)
    return touched


def _remove(path: Path) -> None:
    """Delete a leftover file or folder (a link itself, never what it points to)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def stage_dir(out: Path) -> Path:
    """A new, empty staging folder next to `out` (same filesystem), after cleaning dead exports' leftovers."""
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}{TMP_TAG}{os.getpid()}-", dir=out.parent))


def check_destination(out: Path) -> None:
    """ExportError if `out` is a file or a non-empty folder that is not an earlier bundle."""
    if out.is_file():
        raise ExportError(f"{out}: exists and is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise ExportError(f"{out}: folder exists, is not empty and is not a bundle; choose another --out")


def move_into_place(staged: Path, out: Path) -> None:
    """Replace `out` with the finished folder `staged` (same filesystem): one atomic exchange where the
    system has one, else two renames; the old bundle is deleted last (see the module docstring)."""
    check_destination(out)
    if not out.exists():
        staged.rename(out)
        return
    if exchange(staged, out):
        shutil.rmtree(staged, ignore_errors=True)  # now the old bundle
        return
    old = out.with_name(f".{out.name}{OLD_TAG}{os.getpid()}")
    out.rename(old)
    try:
        staged.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
