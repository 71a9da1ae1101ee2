"""The export settings and what an export produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.checks import at_least, check_max_length, check_threads, one_of, optional_at_least
from llm2edge.defaults import GUARD_TEXTS, LABEL_COL, MAX_VALIDATION, MIN_AGREEMENT, QUANTIZE, TEXT_COL

#: Accepted values of ExportConfig.quantize.
QUANTIZE_CHOICES = ("int8", "none")


@dataclass(kw_only=True)
class ExportConfig:
    """Settings of one `export_bundle` run (model dir in, bundle dir out); checked when built."""

    #: The trained model folder (Hugging Face layout, e.g. `llm2edge train` output).
    model: str | Path
    #: The bundle folder to write (replaced if it already holds a bundle).
    out: str | Path
    #: "int8" (dynamic int8 weights, validated against torch) or "none" (fp32).
    quantize: str = QUANTIZE
    #: Validation data (CSV/JSONL/Parquet with text and label); default MODEL/validation.csv if present.
    validate: str | Path | None = None
    #: int8 must agree with torch on at least this share of the guard texts, else fp32 ships (flips on
    #: near-ties are reported but not counted; see llm2edge.export.guard).
    min_agreement: float = MIN_AGREEMENT
    #: int8 is judged on at least this many texts: the validation rows, topped up with training texts.
    guard_texts: int = GUARD_TEXTS
    #: Raise ExportError instead of falling back to fp32 (and when there is nothing to validate on).
    strict: bool = False
    #: Token limit; None: train_meta.json's, else the tokenizer's model_max_length (never above the
    #: model's position limit).
    max_length: int | None = None
    #: Fuse the transformer graph (attention, layer norm, GELU) before quantizing.
    optimize: bool = True
    #: Per-channel int8 weights; None picks from the CPU (see quantize.choose_quantization).
    per_channel: bool | None = None
    #: Text column of the validation file.
    text_col: str = TEXT_COL
    #: Label column of the validation file.
    label_col: str = LABEL_COL
    #: Threads for torch and onnxruntime during validation; None: `resolve_threads` (the CPUs this process
    #: may use).
    threads: int | None = None
    #: Validate on at most this many rows (the first ones); None for all.
    max_validation: int | None = MAX_VALIDATION
    #: Print progress lines to stderr.
    verbose: bool = True

    def __post_init__(self) -> None:
        one_of("quantize", self.quantize, QUANTIZE_CHOICES)
        # above 1 is allowed: int8 then always falls back to fp32 (or fails with strict)
        at_least("min_agreement", self.min_agreement, 0)
        if self.max_length is not None:
            check_max_length(self.max_length)
        check_threads(self.threads)
        optional_at_least("max_validation", self.max_validation)
        at_least("guard_texts", self.guard_texts, 0)


@dataclass(frozen=True)
class ExportResult:
    """A finished export: where the bundle is, what shipped, and the validation numbers."""

    bundle: Path
    quantization: str
    manifest: dict[str, Any]
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def validation(self) -> dict[str, Any]:
        """The manifest's validation block."""
        return dict(self.manifest.get("validation", {}))

    def table(self) -> str:
        """A short plain-text summary: file sizes, agreements and accuracies of torch, fp32 and int8."""
        if self.manifest.get("student") == "static":
            from llm2edge.export.static import static_summary

            return static_summary(self)
        v = self.validation

        def num(x: Any, fmt: str = "{:.4f}") -> str:
            return "-" if x is None else fmt.format(x)

        def mb(key: str) -> str:
            return f"{self.sizes[key] / 1e6:.1f} MB" if key in self.sizes else "-"

        d32, d8 = v.get("max_logit_diff_fp32"), v.get("max_logit_diff_int8")
        rows = [
            ("", "size", "agree vs torch", "max |dlogit|", "accuracy"),
            ("torch", "-", "-", "-", num(v.get("accuracy_torch"))),
            ("onnx fp32", mb("fp32"), num(v.get("agreement_fp32")), num(d32, "{:.2e}"),
             num(v.get("accuracy_fp32"))),
            ("onnx int8", mb("int8"), num(v.get("agreement_int8")), num(d8, "{:.2e}"),
             num(v.get("accuracy_int8"))),
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        guard = v.get("int8_guard")
        if guard:
            lines.append(f"int8 guard: {guard['n']} texts ({guard['from_validation']} validation + "
                         f"{guard['from_training']} training), {guard['real_flips']} real disagreement(s), "
                         f"{guard['near_tie_flips']} near-tie flip(s); judged agreement "
                         f"{guard['judged_agreement']:.4f} (--min-agreement {v.get('min_agreement')})")
        if v.get("fallback_reason"):
            lines.append(f"int8 REFUSED, fp32 shipped: {v['fallback_reason']}")
        lines.append(f"shipped: {self.quantization} ({self.bundle}), validated on {v.get('n', 0)} texts, "
                     f"{self.seconds:.1f} s")
        return "\n".join(lines)
