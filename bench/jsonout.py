"""The `--json PATH` output the bench scripts share (footprint.py, scaling.py, stages.py, startup.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_result(path: Path | None, result: Any) -> None:
    """Write a measurement as indented JSON to `path` (its folder made first); nothing when `path` is None."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
