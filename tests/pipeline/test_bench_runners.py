"""llm2edge.pipeline.bench.runners: ORTModel rows run the bundle with the edge's own session options."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm2edge.edge import Classifier, session_options
from llm2edge.pipeline.bench.runners import missing_module, ortmodel
from llm2edge.pipeline.bench.spec import SystemSpec


def _recipe(opts) -> tuple:  # noqa: ANN001
    return (opts.intra_op_num_threads, opts.inter_op_num_threads, opts.execution_mode,
            opts.graph_optimization_level, opts.log_severity_level)


def test_ortmodel_session_uses_the_edge_recipe(tiny: Path) -> None:
    """The benchmark's optimum ORTModel row and the edge Classifier open the bundle with one recipe.

    On the CPU the edge spends its threads on concurrent model calls (edge/workers.py), each with one
    intra-op thread; the ORTModel row spends them inside onnxruntime. Both sessions come from session_options.
    """
    pytest.importorskip("optimum.onnxruntime", reason="ORTModel rows need the export extra")
    model = ortmodel(SystemSpec(name="ort", kind="ortmodel", path=str(tiny), threads=2))
    edge = Classifier.load(tiny, threads=2)
    bench_opts = model.session.get_session_options()
    assert _recipe(bench_opts) == _recipe(session_options(2))
    assert _recipe(bench_opts)[:2] == (2, 1)
    assert _recipe(edge.session.get_session_options()) == _recipe(session_options(1))


def test_missing_module_names_the_first_absent_one() -> None:
    assert missing_module("json", "os.path") is None
    assert missing_module("json", "no_such_module_llm2edge", "also_missing") == "no_such_module_llm2edge"
    assert missing_module("no_such_pkg_llm2edge.sub") == "no_such_pkg_llm2edge.sub"
