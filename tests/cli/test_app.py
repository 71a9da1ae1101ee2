"""The CLI shell (llm2edge.cli.main): one-line errors with exit code 2, tracebacks only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llm2edge.cli import main


def run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_unknown_command_exits_2(capsys):
    code, _, err = run(["no-such-command"], capsys)
    assert code == 2 and "no-such-command" in err


def test_help_lists_the_edge_commands(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert "predict" in out and "evaluate" in out


def test_library_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    args = ["evaluate", "--pred", str(tmp_path / "missing.csv"), "--gold", str(tmp_path / "g.csv")]
    code, _, err = run(args, capsys)
    assert code == 2
    assert err.strip() == f"llm2edge: error: {tmp_path / 'missing.csv'}: no such file"
    code, _, err = run(["--debug", *args], capsys)
    assert code == 2
    assert "Traceback" in err and "DataError" in err and err.rstrip().endswith("no such file")


def test_usage_error_exits_2(capsys):
    code, _, err = run(["predict"], capsys)  # --bundle is required
    assert code == 2 and "--bundle" in err


def test_entry_point_runs(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "llm2edge")
    if not os.path.exists(exe):
        pytest.skip("the llm2edge console script is not installed in this environment")
    proc = subprocess.run([exe, "evaluate", "--pred", str(tmp_path / "x.csv"), "--gold", "y.csv"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("llm2edge: error: ") and proc.stderr.count("\n") == 1
