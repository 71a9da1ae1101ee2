"""Offline transformer graph optimization (fused attention, skip-layer-norm, GELU) with onnxruntime.

Only portable fusions: onnxruntime's basic level (constant folding, no hardware-specific layouts) plus the
transformer fusions of `onnxruntime.transformers`, so the graph runs on any CPU onnxruntime supports.
The fused fp32 graph is what gets quantized: quantizing first leaves attention unfused (see README).
"""

from __future__ import annotations

import logging
from pathlib import Path

from llm2edge.errors import ExportError


def ort_model_type(model_type: str) -> str | None:
    """The onnxruntime fusion family ('bert', 'gpt2', ...) for a transformers model_type, None if unknown."""
    try:
        from optimum.onnxruntime.utils import ORTConfigManager

        return ORTConfigManager.get_model_ort_type(model_type.replace("_", "-"))
    except (KeyError, ValueError, ImportError, NotImplementedError):
        return None


def optimize_graph(src: Path, dst: Path, model_type: str) -> dict[str, int]:
    """Write the fused graph of `src` to `dst`; return the fused-operator counts (empty if nothing fused)."""
    from onnxruntime.transformers.optimizer import optimize_model

    family = ort_model_type(model_type)
    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        if family is None:  # unknown architecture: onnxruntime's basic, portable rewrites only
            opt = optimize_model(str(src), opt_level=1, use_gpu=False, only_onnxruntime=True)
        else:
            opt = optimize_model(str(src), model_type=family, opt_level=1, use_gpu=False)
        opt.save_model_to_file(str(dst))
        fused = opt.get_fused_operator_statistics() if family is not None else {}
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph types
        raise ExportError(f"{src}: graph optimization failed ({str(exc).splitlines()[0]}); "
                          f"retry with --no-optimize") from None
    finally:
        quiet.setLevel(level)
    return {k: int(v) for k, v in fused.items() if v}
