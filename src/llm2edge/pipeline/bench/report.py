"""What a benchmark run shows: the markdown speed table, ratio sentences, the bar chart, speed.md/json/png."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm2edge.pipeline.bench.spec import SpeedRow

if TYPE_CHECKING:
    from llm2edge.edge.bundle import BundleInfo

#: Row name the ratios are taken against.
REFERENCE = "edge int8 b1"


@dataclass(frozen=True)
class BenchResult:
    """What `run_bench` measured and wrote."""

    rows: list[SpeedRow]
    skipped: list[tuple[str, str]]  # (system, reason)
    markdown: Path
    json: Path
    plot: Path | None
    extra: dict[str, Any] = field(default_factory=dict)


def fmt_ms(ms: float) -> str:
    """Milliseconds with 3 significant digits, thousands separated above 100."""
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


def ratio_text(row: SpeedRow, ref: SpeedRow | None) -> str:
    """'12.3×' (the reference is that many times faster per item), '1×' for the reference itself."""
    if ref is None or row.kind == "noop":
        return "—"
    if row.system == ref.system:
        return "1×"
    r = row.per_item_ms / ref.per_item_ms
    return f"{r:.3g}×" if r >= 1 else f"{r:.2g}× (faster)"


def speed_table(rows: Sequence[SpeedRow], *, reference: str = REFERENCE) -> str:
    """The markdown speed table: system, batch, ms/item, items/s, peak RSS, how much faster the reference."""
    ref = next((r for r in rows if r.system == reference), None)
    head = f"{reference} is N× faster" if ref else "ratio"
    lines = [f"| system | batch | texts/call | ms/item | items/s | peak RSS MiB | {head} |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rss = f"{r.rss_mb:,.0f}" if r.rss_mb else "—"
        lines.append(f"| {r.system} | {r.batch} | {r.per_call} | {fmt_ms(r.per_item_ms)} | "
                     f"{r.items_per_s:,.1f} | {rss} | {ratio_text(r, ref)} |")
    return "\n".join(lines)


def ratio_sentences(rows: Sequence[SpeedRow], *, reference: str = REFERENCE) -> list[str]:
    """'edge int8 b1 is 4.6× faster per item than torch eager b1' for every other row."""
    ref = next((r for r in rows if r.system == reference), None)
    if ref is None:
        return []
    out = []
    for r in rows:
        if r.system == ref.system or r.kind == "noop":
            continue
        x = r.per_item_ms / ref.per_item_ms
        word = "faster" if x >= 1 else "slower"
        x = x if x >= 1 else 1 / x
        out.append(f"{reference} is {x:.3g}× {word} per item than {r.system}")
    return out


def plot_speed(rows: Sequence[SpeedRow], path: str | Path, *, title: str = "Latency per item") -> Path | None:
    """A horizontal bar chart of ms/item (log scale) per system; None when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    shown = [r for r in rows if r.kind != "noop"]
    shown.sort(key=lambda r: r.per_item_ms)
    colors = {"edge": "#2a9d8f", "static": "#264653", "torch": "#e76f51", "ortmodel": "#f4a261"}
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(shown) + 1.4))
    ax.barh([r.system for r in shown], [r.per_item_ms for r in shown],
            color=[colors.get(r.kind, "#6c757d") for r in shown])
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per item (log scale; lower is better)")
    ax.set_title(title)
    for i, r in enumerate(shown):
        ax.text(r.per_item_ms * 1.08, i, f"{fmt_ms(r.per_item_ms)} ms", va="center", fontsize=8)
    low = 10 ** math.floor(math.log10(min(r.per_item_ms for r in shown) * 0.9))
    ax.set_xlim(left=low, right=max(r.per_item_ms for r in shown) * 4)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def write_report(rows: Sequence[SpeedRow], skipped: Sequence[tuple[str, str]], out: Path, *, reference: str,
                 threads: int | None = None, info: BundleInfo | None = None) -> BenchResult:
    """Write speed.md, speed.json and speed.png into `out` (`threads`: every system's thread count)."""
    machine: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                               "cpus": os.cpu_count(), "threads": threads}
    with contextlib.suppress(OSError):
        machine["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    table = speed_table(rows, reference=reference)
    lines = ["# Runtime (per item)", "",
             f"Bundle: `{info.path}` ({info.quantization}, max_length {info.max_length})" if info else "",
             f"Threads per system: {machine['threads']}; load average at the end: "
             f"{machine.get('load_avg', '?')}; each system in its own process; "
             "per item = median call / texts per call.",
             "", table, ""]
    lines += [f"- {s}" for s in ratio_sentences(rows, reference=reference)]
    if skipped:
        lines += ["", "Skipped:"] + [f"- {name}: {why}" for name, why in skipped]
    md = out / "speed.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    js = out / "speed.json"
    js.write_text(json.dumps({"reference": reference, "machine": machine, "rows": [asdict(r) for r in rows],
                              "skipped": [{"system": n, "reason": w} for n, w in skipped]}, indent=2) + "\n",
                  encoding="utf-8")
    plot = plot_speed(rows, out / "speed.png") if rows else None
    if plot is None and rows:
        skipped = [*skipped, ("plot speed.png", "matplotlib is not installed (pip install 'llm2edge[hub]')")]
    return BenchResult(rows=list(rows), skipped=list(skipped), markdown=md, json=js, plot=plot,
                       extra={"reference": reference, "machine": machine})
