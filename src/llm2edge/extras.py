"""Checks that an optional extra is installed before a command imports it."""

from __future__ import annotations

import importlib.util

from llm2edge.errors import MissingExtraError

#: The modules each extra must provide (first missing one is named in the error).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "hub": ("torch", "transformers", "accelerate", "safetensors", "sklearn", "pandas"),
    "export": ("torch", "transformers", "optimum.onnxruntime", "onnx"),
    "curate": ("cleanlab", "sklearn"),
    "openai": ("openai",),
    "plot": ("matplotlib",),
}


def _has_module(name: str) -> bool:
    """True if `name` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require(extra: str) -> None:
    """Raise MissingExtraError with the pip command if `extra`'s modules are not importable."""
    pip_extra = "hub" if extra in ("curate", "openai", "plot") else extra
    for module in EXTRA_MODULES[extra]:
        if not _has_module(module):
            raise MissingExtraError(pip_extra, module)
