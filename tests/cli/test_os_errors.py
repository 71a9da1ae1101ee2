"""Ordinary OS failures at the CLI boundary: one line naming the path, exit code 2, no traceback.

(predict's cases, which need a bundle, are in tests/edge/test_predict_cli.py; train's corrupt checkpoint in
tests/hub/test_train.py.)
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm2edge.cli import main, os_error_line

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture
def labels_file(example_dir: Path, tmp_path: Path) -> Path:
    """A labels.jsonl of 60 jokes of the shipped example (the gold label, LLM-like probabilities)."""
    from llm2edge.records import read_records

    recs = read_records(example_dir / "train.csv", label_col="label")
    rows = []
    for n, rec in enumerate([r for r in recs if r.label == "funny"][:30] +
                            [r for r in recs if r.label != "funny"][:30]):
        top = 0.55 + 0.4 * ((n * 7) % 10) / 10
        other = "not_funny" if rec.label == "funny" else "funny"
        rows.append({"id": rec.id, "key": f"k{n}", "text": rec.text, "label": rec.label,
                     "probs": {rec.label: top, other: 1 - top}, "confidence": 2 * top - 1,
                     "margin_logprob": None, "prob_source": "scores", "backend": "test", "model": "test",
                     "task": "humor", "prompt_hash": "0", "raw": None, "error": None, "source": "llm",
                     "fields": {}})
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run(args: list[str], capsys) -> tuple[int, str]:
    """Run the CLI in-process; (exit code, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("llm2edge: error: "), err
    return lines[0]


def test_os_error_line_names_the_paths() -> None:
    assert os_error_line(FileNotFoundError(errno.ENOENT, "No such file or directory", "a.csv")) == \
        "a.csv: No such file or directory"
    assert os_error_line(OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b")) == \
        "a -> b: Invalid cross-device link"
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"


@pytest.mark.parametrize("command", ["curate", "sample-experts"])
def test_out_that_is_an_existing_file(command, labels_file, tmp_path, capsys) -> None:
    labels = labels_file
    out = tmp_path / "taken"
    out.write_text("not a folder\n", encoding="utf-8")
    extra = ["--probs", "llm"] if command == "curate" else []
    code, err = _run([command, "--labels", str(labels), "--out", str(out), *extra], capsys)
    assert code == 2
    assert _one_line(err) == f"llm2edge: error: {out}: is a file, not a folder"
    assert out.read_text(encoding="utf-8") == "not a folder\n"


def test_label_into_a_read_only_folder(tmp_path, unprivileged) -> None:
    pytest.importorskip("openai")
    data = tmp_path / "items.csv"
    data.write_text("text\nhello\n", encoding="utf-8")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    res = subprocess.run([*unprivileged, sys.executable, "-m", "llm2edge", "label", "--data", str(data),
                          "--task", "humor", "--out", str(folder / "labels.jsonl"), "--backend", "openai",
                          "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--no-progress"],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert res.returncode == 2, res.stderr
    line = _one_line(res.stderr)
    assert line.startswith(f"llm2edge: error: {folder / 'labels.jsonl'}") and "Permission denied" in line
    assert list(folder.iterdir()) == []


def test_debug_shows_the_traceback_of_an_os_error(labels_file, tmp_path, capsys) -> None:
    out = tmp_path / "taken"
    out.write_text("x", encoding="utf-8")
    code, err = _run(["--debug", "sample-experts", "--labels", str(labels_file), "--out", str(out)], capsys)
    assert code == 2 and "Traceback" in err and "FileExistsError" in err
    assert err.rstrip().endswith(f"llm2edge: error: {out}: is a file, not a folder")
