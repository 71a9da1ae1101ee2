"""What `predict` writes cannot mix or collide (issue 24): a resume refuses rows made with another bundle,
threshold or option; one output is written by one run at a time; two outputs (or input and output) that are
one file are refused before anything is written; Ctrl-C is one line and exit 130, saying what is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture
def run(cli, capsys):
    """The CLI in-process: run(args) -> (exit code, stdout, stderr)."""

    def call(args: list[str]) -> tuple[int, str, str]:
        code = cli(*args)
        out, err = capsys.readouterr()
        return code, out, err

    return call


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _texts(path: Path, n: int) -> Path:
    path.write_text("".join(f"text number {i}\n" for i in range(n)), encoding="utf-8")
    return path


def _partial(run, bundle, src: Path, out: Path, *extra: str) -> bytes:
    """A finished output cut in the middle of a row, as a crash leaves it (its run record stays)."""
    assert run(["predict", "-b", str(bundle), "-i", str(src), "-o", str(out), *extra])[0] == 0
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2 + 3])
    return out.read_bytes()


def test_resume_refuses_rows_of_another_bundle(make_bundle, tmp_path, run):
    first, other = make_bundle("first"), make_bundle("other", seed=1)
    src, out = _texts(tmp_path / "in.txt", 40), tmp_path / "p.jsonl"
    before = _partial(run, first.path, src, out)
    code, _, err = run(["predict", "-b", str(other.path), "-i", str(src), "-o", str(out), "--resume"])
    assert code == 2
    assert one_line(err).startswith(f"llm2edge: error: {out}: its rows were made with bundle (checksum) ")
    assert out.read_bytes() == before  # nothing cut, nothing appended
    # the bundle that made the rows continues them
    code, _, err = run(["predict", "-b", str(first.path), "-i", str(src), "-o", str(out), "--resume"])
    assert code == 0, err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 40


@pytest.mark.parametrize("first, second, what", [
    (["--defer", "0.99"], ["--defer", "0.01"], "--defer threshold 0.99, this run has 0.01"),
    (["--defer", "0.5"], [], "--defer threshold 0.5, this run has None"),
    (["--with-text"], [], "--with-text True, this run has False"),
])
def test_resume_refuses_rows_made_with_other_options(tiny_bundle, tmp_path, run, first, second, what):
    src, out = _texts(tmp_path / "in.txt", 40), tmp_path / "p.jsonl"
    before = _partial(run, tiny_bundle.path, src, out, *first)
    code, _, err = run(["predict", "-b", str(tiny_bundle.path), "-i", str(src), "-o", str(out), "--resume",
                        *second])
    assert code == 2
    assert one_line(err) == (f"llm2edge: error: {out}: its rows were made with {what}; resume with the same "
                             "bundle and options, or use another --output")
    assert out.read_bytes() == before


def test_resume_refuses_a_file_nothing_says_how_it_was_made(tiny_bundle, tmp_path, run):
    src, out = _texts(tmp_path / "in.txt", 10), tmp_path / "p.jsonl"
    before = _partial(run, tiny_bundle.path, src, out)
    (tmp_path / "p.jsonl.run.json").unlink()
    code, _, err = run(["predict", "-b", str(tiny_bundle.path), "-i", str(src), "-o", str(out), "--resume"])
    assert code == 2 and "no p.jsonl.run.json beside it says what made its rows" in one_line(err)
    assert out.read_bytes() == before


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _waiting_predict(bundle: Path, out: Path, rows: int) -> subprocess.Popen:
    """A predict run reading stdin that has written `rows` rows and now waits for more input."""
    proc = subprocess.Popen([sys.executable, "-m", "llm2edge", "predict", "-b", str(bundle), "-o", str(out),
                             "--chunk-size", "8", "--threads", "1"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert proc.stdin is not None
    proc.stdin.write("".join(f"text number {i}\n" for i in range(rows + 3)).encode())
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.is_file() and out.read_bytes().count(b"\n") >= rows:
            return proc
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{out} did not reach {rows} rows")


def test_a_second_run_on_the_same_output_is_refused(tiny_bundle, tmp_path, run):
    out = tmp_path / "p.jsonl"
    first = _waiting_predict(tiny_bundle.path, out, 16)
    try:
        for extra in ([], ["--resume"]):
            code, _, err = run(["predict", "-b", str(tiny_bundle.path), "x", "-o", str(out), *extra])
            assert code == 2
            assert one_line(err) == (f"llm2edge: error: {out}: another predict run (pid {first.pid}) is "
                                     "writing this file; wait for it to end, or use another --output")
        assert out.read_bytes().count(b"\n") == 16  # untouched by the refused runs
    finally:
        _, err = first.communicate(timeout=120)  # end of input: the first run finishes its rows
    assert first.returncode == 0, err
    assert out.read_bytes().count(b"\n") == 19
    assert not (tmp_path / "p.jsonl.lock").exists()


def test_ctrl_c_is_one_line_saying_what_is_written_and_exit_130(tiny_bundle, tmp_path):
    out = tmp_path / "p.jsonl"
    proc = _waiting_predict(tiny_bundle.path, out, 16)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert one_line(err.decode()) == (f"llm2edge: interrupted: 16 rows written to {out}; rerun with --resume "
                                      "to continue")
    assert out.read_bytes().count(b"\n") == 16 and not (tmp_path / "p.jsonl.lock").exists()


@pytest.mark.parametrize("name, other", [("same", "p.csv"), ("dot", "./p.csv"), ("link", "link.csv")])
def test_deferred_out_over_the_output_is_refused_before_writing(tiny_bundle, tmp_path, run, monkeypatch,
                                                                name, other):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "p.csv"
    out.write_text("keep me\n", encoding="utf-8")
    os.symlink(out, tmp_path / "link.csv")
    code, _, err = run(["predict", "-b", str(tiny_bundle.path), "a", "b", "-o", "p.csv", "--defer", "0.9",
                        "--deferred-out", other])
    assert code == 2
    assert one_line(err) == (f"llm2edge: error: --deferred-out {Path(other)} is the same file as --output "
                             "p.csv: give each its own file")
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert not (tmp_path / "p.csv.run.json").exists()


def test_output_over_the_input_is_refused(tiny_bundle, tmp_path, run):
    src = _texts(tmp_path / "in.txt", 5)
    code, _, err = run(["predict", "-b", str(tiny_bundle.path), "-i", str(src), "-o", str(src),
                        "-f", "jsonl"])
    assert code == 2 and one_line(err).endswith("is the same file as --input " + str(src) + ": give each its "
                                                "own file")
    assert src.read_text(encoding="utf-8").count("text number") == 5


def test_run_record_says_what_made_the_rows(tiny_bundle, tmp_path, run):
    src, out = _texts(tmp_path / "in.txt", 3), tmp_path / "p.csv"
    assert run(["predict", "-b", str(tiny_bundle.path), "-i", str(src), "-o", str(out), "--defer",
                "0.4"])[0] == 0
    record = json.loads((tmp_path / "p.csv.run.json").read_text(encoding="utf-8"))
    from llm2edge.edge import read_bundle

    assert record == {"bundle": read_bundle(tiny_bundle.path).checksum, "labels": list(tiny_bundle.labels),
                      "defer": 0.4, "format": "csv", "with_text": False, "text_col": "text", "id_col": None,
                      "input_format": "txt"}
