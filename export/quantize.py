"""Dynamic int8 quantization with the settings that fit the CPU the bundle is exported on."""

from __future__ import annotations

import logging
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm2edge.errors import ExportError

#: CPU flags (from /proc/cpuinfo) that give integer dot products without the AVX2 saturation issue.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class QuantChoice:
    """How the int8 weights are laid out, and why."""

    per_channel: bool
    reduce_range: bool
    weight_type: str
    cpu: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The choice as a plain dict (for the manifest)."""
        return asdict(self)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first processor listed (x86 'flags', ARM 'Features'), or empty."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def choose_quantization(per_channel: bool | None = None, flags: set[str] | None = None,
                        machine: str | None = None) -> QuantChoice:
    """Pick per-channel and reduce-range for this CPU: VNNI/ARM 8-bit, plain AVX2 7-bit weights."""
    flags = cpu_flags() if flags is None else flags
    machine = (machine or platform.machine()).lower()
    vnni = sorted(f for f in VNNI_FLAGS if f in flags)
    if vnni:
        cpu, reduce_range, why = f"x86 {'+'.join(vnni)}", False, "VNNI int8 dot products: full 8-bit weights"
    elif "avx2" in flags or "avx512f" in flags:
        cpu, reduce_range = "x86 avx2 (no VNNI)", True
        why = "AVX2 without VNNI saturates u8*s8 products: 7-bit weights (reduce_range)"
    elif machine in ("aarch64", "arm64") or "asimd" in flags:
        cpu, reduce_range, why = "arm64" + (" dotprod" if "asimddp" in flags else ""), False, "ARM: 8-bit"
    else:
        cpu, reduce_range, why = f"{machine or 'unknown'} (flags unknown)", False, "unknown CPU: 8-bit"
    pc = True if per_channel is None else bool(per_channel)
    why += "; per-channel weights" if pc else "; per-tensor weights"
    if per_channel is None:
        why += " (auto: better agreement at the same speed)"
    return QuantChoice(per_channel=pc, reduce_range=reduce_range, weight_type="QInt8", cpu=cpu, reason=why)


def quantize_int8(src: Path, dst: Path, choice: QuantChoice) -> Path:
    """Dynamic int8 quantization of `src` (fused or not) to `dst` with onnxruntime's quantize_dynamic."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint through the root logger
    try:
        quantize_dynamic(
            src, dst,
            per_channel=choice.per_channel,
            reduce_range=choice.reduce_range,
            weight_type=QuantType.QInt8,
            # Fused graphs (Attention, SkipLayerNormalization) lack some type info; default it to float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    except Exception as exc:  # onnxruntime/onnx raise many kinds
        raise ExportError(f"{src}: int8 quantization failed ({str(exc).splitlines()[0]})") from None
    finally:
        root.setLevel(level)
    return dst
