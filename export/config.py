"""The export settings and what an export produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUANTIZE_CHOICES = ("int8", "none")


@dataclass(kw_only=True)
class ExportConfig:
    """Settings of one `export_bundle` run (model dir in, bundle dir out)."""

    model: str | Path
    out: str | Path
    quantize: str = "int8"
    #: Validation data (CSV/JSONL/Parquet with text and label); default MODEL/validation.csv if present.
    validate: str | Path | None = None
    #: int8 must agree with torch on at least this share of validation texts, else fp32 ships.
    min_agreement: float = 0.99
    #: Raise ExportError instead of falling back to fp32 (and when there is nothing to validate on).
    strict: bool = False
    #: Token limit; default from train_meta.json, else 128 (capped at the model's position limit).
    max_length: int | None = None
    #: Fuse the transformer graph (attention, layer norm, GELU) before quantizing.
    optimize: bool = True
    #: Per-channel int8 weights; None picks from the CPU (see quantize.choose_quantization).
    per_channel: bool | None = None
    text_col: str = "text"
    label_col: str = "label"
    #: Threads for torch and onnxruntime during validation.
    threads: int = 1
    #: Validate on at most this many rows (the first ones); None for all.
    max_validation: int | None = 2000
    #: Print progress lines to stderr.
    verbose: bool = True


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
        lines.append(f"shipped: {self.quantization} ({self.bundle}), validated on {v.get('n', 0)} texts, "
                     f"{self.seconds:.1f} s")
        return "\n".join(lines)
