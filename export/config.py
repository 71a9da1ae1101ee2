"""The export settings and what an export produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.checks import token_limit
from llm2edge.defaults import GUARD_TEXTS, LABEL_COL, MAX_VALIDATION, MIN_AGREEMENT, QUANTIZE, TEXT_COL
from llm2edge.params import Checked, param, threads_param

#: Accepted values of ExportConfig.quantize.
QUANTIZE_CHOICES = ("int8", "none")


@dataclass(kw_only=True)
class ExportConfig(Checked):
    """Settings of one `export_bundle` run (model dir in, bundle dir out); checked when built."""

    #: Hugging Face layout.
    model: Path | str = param(flags=("--model", "-m"), help="Model folder made by `llm2edge train`.")
    out: Path | str = param(flags=("--out", "-o"),
                            help="Bundle folder to write (replaced if it is a bundle).")
    #: "int8": dynamic int8 weights, validated against torch; "none": fp32.
    quantize: str = param(QUANTIZE, choices=QUANTIZE_CHOICES, flags=("--quantize", "-q"),
                          help="int8 or none.")
    #: CSV/JSONL/Parquet with text and label.
    validate: Path | str | None = param(None, help="Validation file (default: MODEL/validation.csv).")
    #: Flips on near-ties are reported but not counted (llm2edge.export.agreement); above 1 is allowed:
    #: int8 then always falls back to fp32 (or fails with strict).
    min_agreement: float = param(MIN_AGREEMENT, low=0,
                                 help="int8 must agree with torch this often, else fp32 ships.")
    guard_texts: int = param(GUARD_TEXTS, low=0, cli_min=0,
                             help="Judge int8 on at least this many texts: the validation rows, topped up "
                                  "with the training texts of train_meta.json.")
    #: Also when there is nothing to validate on.
    strict: bool = param(False, help="Fail instead of falling back to fp32.")
    max_length: int | None = param(None, check=token_limit,
                                   help="Token limit (default: train_meta.json's, else the tokenizer's "
                                        "model_max_length; at most the model's position limit).")
    #: Attention, layer norm, GELU, before quantizing.
    optimize: bool = param(True, flags=("--no-optimize",), negate=True,
                           help="Skip the transformer graph fusion.")
    #: None picks from the CPU (quantize.choose_quantization).
    per_channel: bool | None = param(None, flags=("--per-channel/--per-tensor",),
                                     help="int8 weight layout (default: chosen for this CPU).")
    text_col: str = param(TEXT_COL, help="Text column of the validation file.")
    label_col: str = param(LABEL_COL, help="Label column of the validation file.")
    threads: int | None = threads_param("Threads for validation (torch and onnxruntime)")
    #: The first ones; None for all.
    max_validation: int | None = param(MAX_VALIDATION, low=1, cli=False, none_ok=True,
                                       help="Validate on at most this many rows.")
    verbose: bool = param(True, cli=False, help="Print progress lines to stderr.")


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
            ("", "size", "agree vs torch" + (" (pairs)" if v.get("multi_label") else ""), "max |dlogit|",
             "subset accuracy" if v.get("multi_label") else "accuracy"),
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
            pairs = f"{guard['pairs']} (text, label) pairs of " if "pairs" in guard else ""
            lines.append(f"int8 guard: {pairs}{guard['n']} texts ({guard['from_validation']} validation + "
                         f"{guard['from_training']} training), {guard['real_flips']} real disagreement(s), "
                         f"{guard['near_tie_flips']} near-tie flip(s); judged agreement "
                         f"{guard['judged_agreement']:.4f} (--min-agreement {v.get('min_agreement')})")
        if v.get("fallback_reason"):
            lines.append(f"int8 REFUSED, fp32 shipped: {v['fallback_reason']}")
        lines.append(f"shipped: {self.quantization} ({self.bundle}), validated on {v.get('n', 0)} texts, "
                     f"{self.seconds:.1f} s")
        return "\n".join(lines)
