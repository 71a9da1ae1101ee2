"""llm2edge.edge.session: the one onnxruntime session recipe, and the Classifier runs with it."""

from __future__ import annotations

import onnxruntime as ort

from llm2edge.edge import Classifier, session_options


def test_session_options_recipe() -> None:
    opts = session_options(3)
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (3, 1)
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.log_severity_level == 4  # fatal only: a failing call is reported once, as one line


def test_classifier_session_uses_the_recipe(tiny_bundle) -> None:  # noqa: ANN001
    used = Classifier.load(tiny_bundle.path, threads=2).session.get_session_options()
    want = session_options(1)  # on CPU the 2 threads are 2 calls at once, one intra-op thread each
    for field in ("intra_op_num_threads", "inter_op_num_threads", "execution_mode",
                  "graph_optimization_level", "log_severity_level"):
        assert getattr(used, field) == getattr(want, field), field
