"""`llm2edge predict`: inputs (args, csv, jsonl, txt, parquet, stdin), outputs, errors, resume, no torch."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from llm2edge.cli import main
from llm2edge.records import stable_id
from tests.helpers import PipeStdin
from tests.helpers import run_cli as run

TEXTS = ["I loved it", "awful, just awful", "the package arrived on time", "", "fine I guess"]
HEAVY = ("torch", "transformers", "optimum", "sklearn", "pandas", "accelerate")


def cmd(bundle) -> list[str]:
    """The start of a predict command line for a bundle."""
    return ["predict", "-b", str(bundle.path)]


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def expected_labels(bundle, texts) -> list[str]:
    return [bundle.labels[i] for i in bundle.reference(texts).argmax(axis=1)]


def test_texts_as_arguments_to_jsonl(tiny_bundle, capsys, monkeypatch):
    code, out, err = run(["predict", "--bundle", str(tiny_bundle.path), *TEXTS[:3]], capsys, monkeypatch)
    assert code == 0, err
    rows = jsonl(out)
    assert [r["id"] for r in rows] == [stable_id(n, t) for n, t in enumerate(TEXTS[:3])]
    assert [r["label"] for r in rows] == expected_labels(tiny_bundle, TEXTS[:3])
    for r in rows:
        assert list(r["probs"]) == list(tiny_bundle.labels)
        assert abs(sum(r["probs"].values()) - 1) < 1e-4
        assert max(r["probs"], key=r["probs"].get) == r["label"]


def test_csv_file_with_ids_to_csv_output(tiny_bundle, tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "other"])
        for n, t in enumerate(TEXTS):
            w.writerow([f"doc{n}", t, "x,\ny"])  # a quoted multi-line field in another column
    out_path = tmp_path / "pred.csv"
    code, out, err = run([*cmd(tiny_bundle), "--input", str(src), "--output", str(out_path), "--no-progress"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert out == ""
    rows = list(csv.DictReader(out_path.open(encoding="utf-8")))
    assert list(rows[0]) == ["id", "label", *(f"p_{name}" for name in tiny_bundle.labels)]
    assert [r["id"] for r in rows] == [f"doc{n}" for n in range(len(TEXTS))]
    assert [r["label"] for r in rows] == expected_labels(tiny_bundle, TEXTS)
    probs = np.array([[float(r[f"p_{name}"]) for name in tiny_bundle.labels] for r in rows])
    ref = tiny_bundle.reference(TEXTS)
    ref = np.exp(ref - ref.max(1, keepdims=True))
    np.testing.assert_allclose(probs, ref / ref.sum(1, keepdims=True), atol=2e-6)
    assert "1 empty text(s) classified" in err


def test_jsonl_input_with_named_columns_and_text_copy(tiny_bundle, tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"key": n, "body": t}) + "\n" for n, t in enumerate(TEXTS[:3])))
    code, out, err = run([*cmd(tiny_bundle), "-i", str(src), "--text-col", "body",
                          "--id-col", "key", "--with-text"], capsys, monkeypatch)
    assert code == 0, err
    rows = jsonl(out)
    assert [(r["id"], r["text"]) for r in rows] == [(str(n), t) for n, t in enumerate(TEXTS[:3])]
    assert list(rows[0]) == ["id", "text", "label", "probs"]


def test_txt_and_parquet_inputs(tiny_bundle, tmp_path, capsys, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    texts = [t for t in TEXTS if t]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    results = []
    for name in ("in.txt", "in.parquet"):
        code, out, err = run([*cmd(tiny_bundle), "-i", str(tmp_path / name)],
                             capsys, monkeypatch)
        assert code == 0, err
        results.append(jsonl(out))
    assert results[0] == results[1]
    assert [r["label"] for r in results[0]] == expected_labels(tiny_bundle, texts)


def test_stdin_dash_and_implicit_pipe(tiny_bundle, capsys, monkeypatch):
    data = "\n".join(TEXTS[:3]).encode() + b"\n"
    code, out1, err = run([*cmd(tiny_bundle), "-i", "-"], capsys, monkeypatch, stdin=data)
    assert code == 0, err
    code, out2, err = run(cmd(tiny_bundle), capsys, monkeypatch, stdin=data)
    assert code == 0, err
    assert out1 == out2
    assert [r["label"] for r in jsonl(out1)] == expected_labels(tiny_bundle, TEXTS[:3])


def test_stdin_jsonl(tiny_bundle, capsys, monkeypatch):
    data = b'{"id": "a", "text": "good"}\n{"id": "b", "text": "bad"}\n'
    code, out, err = run([*cmd(tiny_bundle), "-i", "-", "--input-format", "jsonl",
                          "--id-col", "id", "-f", "csv"], capsys, monkeypatch, stdin=data)
    assert code == 0, err
    assert [r["id"] for r in csv.DictReader(io.StringIO(out))] == ["a", "b"]


def test_small_chunks_and_batches_give_the_same_output(tiny_bundle, tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(f"{t} number {n}" for n in range(9) for t in TEXTS) + "\n", encoding="utf-8")
    outs = []
    for extra in ([], ["--chunk-size", "4", "--batch-size", "3"], ["--chunk-size", "1", "--batch-size", "1"]):
        code, out, err = run([*cmd(tiny_bundle), "-i", str(src), *extra], capsys, monkeypatch)
        assert code == 0, err
        outs.append(out)
    rows = [jsonl(out) for out in outs]
    assert len(rows[0]) == 45
    for other in rows[1:]:  # same ids and labels in the same order; probabilities equal up to float noise
        assert [(r["id"], r["label"]) for r in other] == [(r["id"], r["label"]) for r in rows[0]]
        np.testing.assert_allclose([list(r["probs"].values()) for r in other],
                                   [list(r["probs"].values()) for r in rows[0]], atol=1e-5)


def test_truncation_warning_once(tiny_bundle, capsys, monkeypatch):
    long_text = "word " * 10_000
    code, out, err = run([*cmd(tiny_bundle), long_text, long_text, "short"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert err.count("truncated") == 1
    assert f"2 text(s) truncated to max_length={tiny_bundle.max_length} tokens" in err


def test_resume_after_a_crash(tiny_bundle, tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(f"text number {n}" for n in range(20)) + "\n", encoding="utf-8")
    for fmt in ("csv", "jsonl"):
        full, part = tmp_path / f"full.{fmt}", tmp_path / f"part.{fmt}"
        args = [*cmd(tiny_bundle), "-i", str(src), "--with-text"]
        assert run([*args, "-o", str(full)], capsys, monkeypatch)[0] == 0
        data = full.read_bytes()
        cut = data.index(b"text number 12")  # torn in the middle of a row, as after a crash
        part.write_bytes(data[:cut + 7])
        record = full.with_name(full.name + ".run.json")  # written before the first row, like a crashed run
        part.with_name(part.name + ".run.json").write_bytes(record.read_bytes())
        code, _, err = run([*args, "-o", str(part), "--resume", "--progress"], capsys, monkeypatch)
        assert code == 0, err
        assert part.read_bytes() == data
        assert "resumed after" in err
        # resuming a finished file adds nothing
        assert run([*args, "-o", str(part), "--resume"], capsys, monkeypatch)[0] == 0
        assert part.read_bytes() == data


def test_resume_refuses_an_output_of_other_input(tiny_bundle, tmp_path, capsys, monkeypatch):
    out = tmp_path / "p.jsonl"
    assert run([*cmd(tiny_bundle), "a", "b", "-o", str(out)], capsys, monkeypatch)[0] == 0
    code, _, err = run([*cmd(tiny_bundle), "c", "d", "e", "-o", str(out), "--resume"],
                       capsys, monkeypatch)
    assert code == 2 and "does not match the input" in err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("llm2edge: error: "), err
    return lines[0]


def test_non_utf8_file_names_file_and_line(tiny_bundle, tmp_path, capsys, monkeypatch):
    src = tmp_path / "bad.csv"
    src.write_bytes(b"text\nfine\nalso fine\ncaf\xe9 latin-1\n")
    code, _, err = run([*cmd(tiny_bundle), "-i", str(src), "-o", str(tmp_path / "o.csv")],
                       capsys, monkeypatch)
    assert code == 2
    assert f"{src}:4: not valid UTF-8" in _one_error_line(err)


@pytest.mark.parametrize(("args", "message"), [
    (["-i", "{data}/in.csv", "--text-col", "body"], "missing column(s) body"),
    (["-i", "{data}/nope.csv"], "nope.csv: no such file"),
    (["-i", "{data}/in.csv", "-o", "{data}/out.xlsx"], "cannot tell the output format"),
    (["-i", "{data}/in.csv", "some text"], "not both"),
    (["-i", "{data}/in.csv", "--format", "xml"], "format must be one of csv, jsonl, got 'xml'"),
    (["some text", "--resume"], "--resume needs --output"),
    (["-i", "{data}/in.csv", "-o", "{data}/no/such/dir/out.csv"], "output folder does not exist"),
])
def test_input_errors_exit_2_with_one_line(tiny_bundle, tmp_path, capsys, monkeypatch, args, message):
    (tmp_path / "in.csv").write_text("text\nhello\n", encoding="utf-8")
    args = [a.replace("{data}", str(tmp_path)) for a in args]
    code, _, err = run([*cmd(tiny_bundle), *args], capsys, monkeypatch)
    assert code == 2
    assert message in _one_error_line(err)


def test_bad_bundle_exits_2(make_bundle, tmp_path, capsys, monkeypatch):
    b = make_bundle()
    (b.path / "tokenizer.json").write_text("{}", encoding="utf-8")
    code, _, err = run(["predict", "-b", str(b.path), "hello"], capsys, monkeypatch)
    assert code == 2 and "tokenizer.json: checksum mismatch" in _one_error_line(err)
    code, _, err = run(["predict", "-b", str(tmp_path / "none"), "hello"], capsys, monkeypatch)
    assert code == 2 and "bundle folder not found" in _one_error_line(err)


def test_no_input_on_a_terminal_is_an_error(tiny_bundle, capsys, monkeypatch):
    class Tty(PipeStdin):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty(io.BytesIO(b""), encoding="utf-8"))
    with pytest.raises(SystemExit) as exc:
        main(cmd(tiny_bundle))
    assert exc.value.code == 2
    assert "no input" in capsys.readouterr().err


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_predict_never_imports_torch(tiny_bundle, tmp_path):
    """Import the edge and run the CLI in one process with torch & co. made unimportable."""
    script = textwrap.dedent(f"""
        import sys, importlib.abc
        HEAVY = {HEAVY!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in HEAVY:
                    raise ImportError("blocked heavy import: " + name)
        sys.meta_path.insert(0, Block())
        import llm2edge.edge
        assert not [m for m in sys.modules if m.split(".")[0] in HEAVY], "edge import"
        from llm2edge.cli import main
        try:
            main(["predict", "--bundle", sys.argv[1], "hello there", "-o", sys.argv[2]])
        except SystemExit as exc:
            assert not exc.code, exc.code
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
        assert not loaded, loaded
        print("clean")
    """)
    out = tmp_path / "p.jsonl"
    proc = subprocess.run([sys.executable, "-c", script, str(tiny_bundle.path), str(out)],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clean"
    assert len(jsonl(out.read_text())) == 1


def test_edge_import_loads_only_its_runtime():
    """`import llm2edge.edge` pulls in numpy, onnxruntime and tokenizers and nothing else outside stdlib."""
    script = ("import json, sys; before = set(sys.modules); import llm2edge.edge; "
              "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before} "
              "- set(sys.stdlib_module_names))))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env=_env())
    assert proc.returncode == 0, proc.stderr
    loaded = {m for m in json.loads(proc.stdout) if not m.startswith("_")}
    assert loaded <= {"llm2edge", "numpy", "onnxruntime", "tokenizers"}, loaded


def test_cli_subprocess_with_piped_stdin(tiny_bundle):
    proc = subprocess.run([sys.executable, "-m", "llm2edge", *cmd(tiny_bundle), "-f", "csv"],
                          input="first text\nsecond text\n", capture_output=True, text=True, timeout=120,
                          env=_env())
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["label"] for r in rows] == expected_labels(tiny_bundle, ["first text", "second text"])


def test_base_install_venv(tiny_bundle):
    """In the slim edge virtualenv (no torch at all) `llm2edge predict` works; set LLM2EDGE_EDGE_VENV."""
    venv = os.environ.get("LLM2EDGE_EDGE_VENV")
    if not venv:
        pytest.skip("LLM2EDGE_EDGE_VENV (a base-only install, made by scripts/test.sh) is not set")
    python = Path(venv) / "bin" / "python"
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True, env=_env())
    assert no_torch.returncode != 0
    proc = subprocess.run([str(python), "-m", "llm2edge", *cmd(tiny_bundle), "hello"],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert jsonl(proc.stdout)[0]["label"] == expected_labels(tiny_bundle, ["hello"])[0]


def test_closed_stdout_stops_quietly(tiny_bundle):
    """`llm2edge predict ... | head -1`: no traceback when the reader goes away."""
    proc = subprocess.Popen([sys.executable, "-m", "llm2edge", *cmd(tiny_bundle), "--chunk-size", "64"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"".join(b"text number %d\n" % i for i in range(4000)))
    proc.stdin.close()
    first = proc.stdout.readline()
    proc.stdout.close()
    proc.wait(timeout=120)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    assert json.loads(first)["id"].startswith("r0-")
    assert proc.returncode == 1
    assert b"Traceback" not in err


# -- ordinary OS failures and bad input: one line naming the path, exit 2, never a traceback (issue 14) ------
def _cli(bundle, *args: str, prefix: tuple[str, ...] = (), **kwargs) -> subprocess.CompletedProcess:
    """`llm2edge predict -b BUNDLE ARGS` in a subprocess (after a command prefix such as setpriv)."""
    kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.run([*prefix, sys.executable, "-m", "llm2edge", *cmd(bundle), *args], text=True,
                          timeout=120, env=_env(), **kwargs)


def test_unreadable_input_and_read_only_output_folder(tiny_bundle, tmp_path, unprivileged):
    src = tmp_path / "in.csv"
    src.write_text("text\nhello\n", encoding="utf-8")
    src.chmod(0)
    res = _cli(tiny_bundle, "-i", str(src), prefix=tuple(unprivileged))
    assert res.returncode == 2, res.stderr
    assert _one_error_line(res.stderr) == f"llm2edge: error: {src}: Permission denied"
    src.chmod(0o644)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    res = _cli(tiny_bundle, "-i", str(src), "-o", str(folder / "out.jsonl"), prefix=tuple(unprivileged))
    assert res.returncode == 2, res.stderr
    assert _one_error_line(res.stderr) == f"llm2edge: error: {folder / 'out.jsonl'}: Permission denied"


def test_disk_full_names_the_output(tiny_bundle, tmp_path, capsys, monkeypatch):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    (tmp_path / "in.csv").write_text("text\nhello\n", encoding="utf-8")
    code, _, err = run([*cmd(tiny_bundle), "-i", str(tmp_path / "in.csv"), "-o", "/dev/full", "-f", "jsonl"],
                       capsys, monkeypatch)
    assert code == 2 and _one_error_line(err) == "llm2edge: error: /dev/full: No space left on device"
    with open("/dev/full", "w") as full:  # stdout on a full disk
        res = _cli(tiny_bundle, "-i", str(tmp_path / "in.csv"), stdout=full)
    assert res.returncode == 2
    assert _one_error_line(res.stderr) == "llm2edge: error: <stdout>: No space left on device"


def test_output_that_is_a_folder(tiny_bundle, tmp_path, capsys, monkeypatch):
    (tmp_path / "in.csv").write_text("text\nhello\n", encoding="utf-8")
    folder = tmp_path / "out.jsonl"
    folder.mkdir()
    for extra in ([], ["--resume"]):
        code, _, err = run([*cmd(tiny_bundle), "-i", str(tmp_path / "in.csv"), "-o", str(folder), *extra],
                           capsys, monkeypatch)
        assert code == 2 and _one_error_line(err) == f"llm2edge: error: {folder}: Is a directory"


def test_closed_stdin_is_one_line(tiny_bundle):
    res = _cli(tiny_bundle, stdin=None, preexec_fn=lambda: os.close(0))  # `predict <&-`
    assert res.returncode == 2, res.stderr
    assert "standard input is closed" in _one_error_line(res.stderr)
    res = _cli(tiny_bundle, "-i", "-", preexec_fn=lambda: os.close(0))
    assert res.returncode == 2 and "standard input is closed" in _one_error_line(res.stderr)


def test_cr_only_csv_is_read_line_by_line(tiny_bundle, tmp_path, capsys, monkeypatch):
    src = tmp_path / "mac.csv"
    src.write_bytes(b'id,text\rone,I loved it\rtwo,"awful, just awful"\r')
    code, out, err = run([*cmd(tiny_bundle), "-i", str(src)], capsys, monkeypatch)
    assert code == 0, err
    rows = jsonl(out)
    assert [r["id"] for r in rows] == ["one", "two"]
    assert [r["label"] for r in rows] == expected_labels(tiny_bundle, ["I loved it", "awful, just awful"])


@pytest.mark.parametrize(("content", "message"), [
    ('id,text\n1,first\n2,"second\n3,third\n4,fourth\n', "in.csv:3: a quoted field opened in this row"),
    ("text,text,label\na,b,x\n", "in.csv:1: the header names column 'text' twice"),
    ("id,text\n1,first\n  ,second\n", "in.csv:3: blank id in column 'id'"),
    ("id,text\n1,first\n,second\n", "in.csv:3: blank id in column 'id'"),
])
def test_bad_csv_is_one_line_and_writes_nothing_wrong(tiny_bundle, tmp_path, capsys, monkeypatch, content,
                                                      message):
    src = tmp_path / "in.csv"
    src.write_text(content, encoding="utf-8")
    code, _, err = run([*cmd(tiny_bundle), "-i", str(src), "-o", str(tmp_path / "o.jsonl")], capsys,
                       monkeypatch)
    assert code == 2 and message in _one_error_line(err)


def test_evaluate_accepts_predicts_own_output(tiny_bundle, tmp_path, capsys, monkeypatch):
    gold = tmp_path / "gold.csv"
    gold.write_text("id,text,label\n a,I loved it,positive\nb ,awful,negative\n", encoding="utf-8")
    code, _, err = run([*cmd(tiny_bundle), "-i", str(gold), "-o", str(tmp_path / "p.jsonl")], capsys,
                       monkeypatch)
    assert code == 0, err
    assert [r["id"] for r in jsonl((tmp_path / "p.jsonl").read_text())] == [" a", "b "]  # kept exactly
    code, out, err = run(["evaluate", "--pred", str(tmp_path / "p.jsonl"), "--gold", str(gold)], capsys,
                         monkeypatch)
    assert code == 0, err
    assert "joined by id" in out
