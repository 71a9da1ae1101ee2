"""The int8 configuration chosen for a CPU's features."""

from __future__ import annotations

from llm2edge.export.quantize import choose_quantization, cpu_flags


def test_cpu_flags_reads_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_vnni\n\nprocessor\t: 1\nflags\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert cpu_flags(x86) == {"fpu", "sse2", "avx2", "avx512_vnni"}
    assert cpu_flags(arm) == {"fp", "asimd", "asimddp"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_choice_follows_the_cpu():
    vnni = choose_quantization(flags={"avx2", "avx512f", "avx512_vnni"}, machine="x86_64")
    assert vnni.per_channel and not vnni.reduce_range and "avx512_vnni" in vnni.cpu
    avx2 = choose_quantization(flags={"avx2"}, machine="x86_64")
    assert avx2.reduce_range and "no VNNI" in avx2.cpu
    arm = choose_quantization(flags={"asimd", "asimddp"}, machine="aarch64")
    assert not arm.reduce_range and arm.cpu == "arm64 dotprod"
    forced = choose_quantization(per_channel=False, flags={"avx2"}, machine="x86_64")
    assert not forced.per_channel and "per-tensor" in forced.reason
    assert set(vnni.to_dict()) == {"per_channel", "reduce_range", "weight_type", "cpu", "reason"}
