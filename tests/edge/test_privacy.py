"""The edge runtime leaks nothing (issue 14.6): predict writes only its --output (and, beside it, the record
of what made its rows, issue 24).

onnxruntime >= 1.32 writes a device id and a telemetry database under ~/.cache/Microsoft/DeveloperTools/
when it is imported, unless ORT_DISABLE_TELEMETRY=1 is set first; llm2edge.edge sets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_predict_writes_nothing_outside_its_output(tiny_bundle, tmp_path):
    home, cwd, tmp, out_dir = (tmp_path / name for name in ("home", "cwd", "tmp", "out"))
    for folder in (home, cwd, tmp, out_dir):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    bundle_before = _tree(tiny_bundle.path)
    src = cwd / "in.txt"
    src.write_text("first text\nsecond text\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "llm2edge", "predict", "-b", str(tiny_bundle.path),
                           "-i", "in.txt", "-o", str(out_dir / "p.jsonl")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _tree(home) == []  # no ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}
    assert _tree(tmp) == []
    assert _tree(cwd) == ["in.txt"]
    assert _tree(out_dir) == ["p.jsonl", "p.jsonl.run.json"]  # and the record of what made its rows
    assert _tree(tiny_bundle.path) == bundle_before


def test_an_explicit_setting_is_kept():
    """A user who sets the variable keeps their value (setdefault)."""
    code = "import os, llm2edge.edge; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "0"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "0"
    env.pop("ORT_DISABLE_TELEMETRY")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "1"
