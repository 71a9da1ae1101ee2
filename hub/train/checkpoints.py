"""Epoch checkpoints under OUT/checkpoints: find the newest complete one, save one and drop the older ones.

A checkpoint is complete once its checkpoint.json (epoch and the run's fingerprint) is written; a resumed
run accepts only a checkpoint with its own fingerprint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

CHECKPOINTS = "checkpoints"
CHECKPOINT_JSON = "checkpoint.json"


def write_json(path: Path, obj: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename), so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def share_one_mode(folder: Path) -> None:
    """Give every file under `folder` the mode a new file gets under this process's umask (safetensors and
    accelerate write 0600 whatever the umask, the other writers 0666 minus it): one mode for a run's files."""
    mask = os.umask(0)
    os.umask(mask)
    mode = 0o666 & ~mask
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and (path.stat().st_mode & 0o777) != mode:
            path.chmod(mode)


def last_checkpoint(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint (its folder has checkpoint.json) under `root`, or None."""
    found: list[tuple[int, Path, dict[str, Any]]] = []
    if root.is_dir():
        for sub in root.glob("epoch-*"):
            meta = sub / CHECKPOINT_JSON
            if meta.is_file():
                try:
                    info = json.loads(meta.read_text(encoding="utf-8"))
                    found.append((int(info["epoch"]), sub, info))
                except (ValueError, KeyError, TypeError):
                    continue
    if not found:
        return None
    epoch, sub, info = max(found, key=lambda t: t[0])
    return sub, info


def save_checkpoint(accelerator: Any, root: Path, epoch: int, key: str) -> None:
    """Save the accelerate state of `epoch` (model as safetensors), mark it complete, drop older ones."""
    target = root / f"epoch-{epoch}"
    if accelerator.is_main_process and target.exists():
        shutil.rmtree(target)  # a torn checkpoint of a crashed run
    accelerator.wait_for_everyone()
    accelerator.save_state(str(target), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(target / CHECKPOINT_JSON, {"epoch": epoch, "config_hash": key})
        for old in root.glob("epoch-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
