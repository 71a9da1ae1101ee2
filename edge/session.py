"""The edge's onnxruntime session recipe: the one place that sets how a bundle's model is run.

`Classifier.load` builds its session from `session_options`, and so do the other places that run an ONNX
classifier and want to measure or validate what the edge runs: the benchmark's optimum ORTModel rows
(`llm2edge.pipeline.bench.runners`) and export validation (through `Classifier.load`).
"""

from __future__ import annotations

import onnxruntime as ort

#: Log level of the sessions: 4 = fatal only. Warnings (unused initializers) are noise, and a failing model
#: call raises an exception that the edge reports as one line; onnxruntime's own error log line would only
#: repeat it, in colour, before the message.
LOG_SEVERITY = 4


def session_options(threads: int) -> ort.SessionOptions:
    """The edge's SessionOptions: `threads` intra-op threads, one inter-op, sequential, all graph rewrites.

    One inter-op thread and sequential execution: a BERT-style graph is a chain, so a second pool would only
    compete with the intra-op one. `threads` must be at least 1 (callers resolve their default first).
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = LOG_SEVERITY
    return opts
