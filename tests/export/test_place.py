"""The export swap is atomic and clean (issue 14.4), checked with real SIGKILLs of a subprocess.

move_into_place exchanges the staged bundle and `out` in one renameat2(RENAME_EXCHANGE) call: killed right
after it, `out` is the new bundle; killed before it, the old one. The two-rename fallback (filesystems
without exchange) leaves no bundle at `out` when killed between its renames; the next export puts the old
one back. Leftover `.NAME.tmp-PID-*` / `.NAME.old-PID` folders of dead processes are removed by the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llm2edge.edge.bundle import read_bundle, write_manifest
from llm2edge.export.place import clean_stale, exchange, move_into_place, stage_dir


def _bundle(folder: Path, tag: str) -> Path:
    """A minimal bundle that read_bundle accepts (the model bytes are never parsed here)."""
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_text(f"model {tag}", encoding="utf-8")
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"id2label": {"0": "a", "1": "b"}}), encoding="utf-8")
    write_manifest(folder, labels=["a", "b"], max_length=8, source_model=tag, quantization="none")
    return folder


def _tag(out: Path) -> str:
    return read_bundle(out).source_model


def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not exchange(a, b):
        pytest.skip("this system or filesystem cannot exchange two paths")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_replace_leaves_only_the_new_bundle(tmp_path):
    out = _bundle(tmp_path / "bundle", "old")
    stage = stage_dir(out)
    move_into_place(_bundle(stage / "new", "new"), out)
    assert _tag(out) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bundle", stage.name])  # caller removes it
    assert list(stage.iterdir()) == []


_KILLED = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from llm2edge.export import place
    from llm2edge.edge.bundle import write_manifest
    out, where = Path(sys.argv[1]), sys.argv[2]

    def pause():
        print("paused", flush=True)
        time.sleep(120)  # the test sends SIGKILL here

    if where == "after-exchange":
        real = place.exchange
        def exchange(a, b):
            done = real(a, b)
            assert done, "no exchange on this filesystem"
            pause()
        place.exchange = exchange
    elif where == "between-renames":  # the fallback of filesystems without exchange
        place.exchange = lambda a, b: False
        real_rename = Path.rename
        def rename(self, target):
            result = real_rename(self, target)
            if ".old-" in str(target):
                pause()
            return result
        Path.rename = rename
    stage = place.stage_dir(out)
    new = stage / "new"
    new.mkdir()
    (new / "model.onnx").write_text("model new")
    (new / "tokenizer.json").write_text("{}")
    (new / "config.json").write_text('{"id2label": {"0": "a", "1": "b"}}')
    write_manifest(new, labels=["a", "b"], max_length=8, source_model="new", quantization="none")
    if where == "before-swap":
        pause()
    place.move_into_place(new, out)
""")


def _kill_at(out: Path, where: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(out), where], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "paused":
        proc.kill()
        raise AssertionError(f"{line!r} {proc.communicate()[1]}")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.communicate()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_kill_after_the_exchange_leaves_the_new_bundle(tmp_path):
    a, b = tmp_path / "probe-a", tmp_path / "probe-b"
    a.mkdir()
    b.mkdir()
    if not exchange(a, b):
        pytest.skip("this system or filesystem cannot exchange two paths")
    out = _bundle(tmp_path / "out" / "bundle", "old")
    _kill_at(out, "after-exchange")
    assert _tag(out) == "new"  # complete and verified at once, no repair needed
    assert [name.split("-")[0] for name in _leftovers(out.parent)] == [".bundle.tmp"]
    stage = stage_dir(out)  # the next export cleans what the killed one left
    assert _leftovers(out.parent) == [stage.name]


def test_kill_before_the_swap_leaves_the_old_bundle(tmp_path):
    out = _bundle(tmp_path / "bundle", "old")
    _kill_at(out, "before-swap")
    assert _tag(out) == "old"
    assert len(_leftovers(tmp_path)) == 1
    clean_stale(out)
    assert _leftovers(tmp_path) == []


def test_kill_between_the_fallback_renames_is_repaired_by_the_next_run(tmp_path):
    out = _bundle(tmp_path / "bundle", "old")
    _kill_at(out, "between-renames")
    assert not out.exists()  # the window the fallback has; the next run closes it
    assert {name.split("-")[0] for name in _leftovers(tmp_path)} == {".bundle.old", ".bundle.tmp"}
    stage = stage_dir(out)
    assert _tag(out) == "old"
    assert _leftovers(tmp_path) == [stage.name]


def test_leftovers_of_a_running_export_are_kept(tmp_path, dead_pid):
    out = _bundle(tmp_path / "bundle", "old")
    dead, alive = dead_pid, os.getppid()
    for name in (f".bundle.tmp-{dead}-x1", f".bundle.old-{dead}", f".bundle.tmp-{alive}-x2",
                 ".bundle.tmp-nopid", ".other.tmp-1-x"):
        (tmp_path / name).mkdir()
    removed = clean_stale(out)
    assert sorted(p.name for p in removed) == [f".bundle.old-{dead}", f".bundle.tmp-{dead}-x1"]
    assert _leftovers(tmp_path) == [f".bundle.tmp-{alive}-x2", ".bundle.tmp-nopid", ".other.tmp-1-x"]
    assert _tag(out) == "old"


def test_an_old_bundle_is_restored_only_when_out_is_missing(tmp_path, dead_pid):
    out = tmp_path / "bundle"
    dead = dead_pid
    _bundle(tmp_path / f".bundle.old-{dead}", "old")
    clean_stale(out)
    assert _tag(out) == "old" and _leftovers(tmp_path) == []
    _bundle(tmp_path / f".bundle.old-{dead}", "older")
    clean_stale(out)
    assert _tag(out) == "old" and _leftovers(tmp_path) == []
