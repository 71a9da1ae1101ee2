"""The student ladder: speed from one bench run beside accuracy measured on one data set, table and plot.

    python bench/ladder.py bench/out/full.json --accuracy "static=0.756,MiniLM int8=0.822,..." \
        --data "MRF test, 427 rows" [--out bench/out/ladder]

Speed: per-item ms at batch 1 and items/s at batch 32 of each rung, its model folder's size and its cold
start (the worker's load time: imports, verifying and loading the model) from a pytest-benchmark JSON by
`pytest bench --benchmark-only --benchmark-json=...` (the same run, threads and texts for every rung); the
worker's own time (`in_worker_ms_per_item`) beside the round trip where recorded. Accuracy: measured
elsewhere on one labeled set and passed in (`--accuracy rung=value`; rungs without one are plotted without
it). Writes OUT.md and OUT.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: rung -> (batch-1 row, batch-32 row) in the bench JSON.
RUNGS = {
    "static": ("static b1", "static b32"),
    "MiniLM int8": ("edge int8 b1", "edge int8 b32"),
    "MiniLM fp32": ("edge fp32 b1", "edge fp32 b32"),
    "MiniLM torch eager": ("torch eager b1", "torch eager b32"),
    "LLM scoring (SmolLM2-135M)": ("LLM scoring b1", "LLM scoring b8"),
}


def rows(path: Path) -> dict[str, dict]:
    """system -> {ms (round trip per item), inside (worker's own per item, or None), rss}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info") or {}
        if info.get("system"):
            per_call = int(info.get("per_call") or 1)
            out[info["system"]] = {"ms": bench["stats"]["median"] * 1000 / per_call,
                                   "inside": info.get("in_worker_ms_per_item"), "rss": info.get("rss_mb"),
                                   "load_s": info.get("load_s"), "size_mb": info.get("size_mb")}
    return out


def ladder(path: Path, accuracy: dict[str, float]) -> list[dict]:
    """One dict per rung measured in `path`."""
    measured = rows(path)
    out = []
    for rung, (b1, bn) in RUNGS.items():
        if b1 not in measured:
            continue
        one, many = measured[b1], measured.get(bn)
        out.append({"rung": rung, "b1_ms": one["ms"], "b1_inside_ms": one["inside"],
                    "bn": bn.rsplit(" b", 1)[1] if many else None,
                    "bn_items_s": 1000 / many["ms"] if many else None, "rss": one["rss"],
                    "load_s": one["load_s"], "size_mb": one["size_mb"], "accuracy": accuracy.get(rung)})
    return out


def markdown(items: list[dict], data: str, reference: str = "MiniLM int8") -> str:
    """The ladder table."""
    ref = next((i["b1_ms"] for i in items if i["rung"] == reference), None)
    lines = [f"| rung | ms/item b1 (inside the worker) | × vs {reference} b1 | items/s, larger batch | "
             f"model MB | cold start s | peak RSS MiB | accuracy ({data}) |", "|---|" + "---:|" * 7]
    for i in items:
        inside = f" ({i['b1_inside_ms']:.3g})" if i["b1_inside_ms"] is not None else ""
        speed = f"{ref / i['b1_ms']:.3g}×" if ref else "—"
        bn = f"{i['bn_items_s']:,.0f} (b{i['bn']})" if i["bn_items_s"] else "—"
        acc = f"{i['accuracy']:.3f}" if i["accuracy"] is not None else "—"
        rss = f"{i['rss']:.0f}" if i["rss"] else "—"
        size = f"{i['size_mb']:.3g}" if i["size_mb"] is not None else "—"
        load = f"{i['load_s']:.2f}" if i["load_s"] is not None else "—"
        lines.append(f"| {i['rung']} | {i['b1_ms']:.3g}{inside} | {speed} | {bn} | {size} | {load} | {rss} | "
                     f"{acc} |")
    return "\n".join(lines) + "\n"


def plot(items: list[dict], path: Path, data: str) -> None:
    """Accuracy against items/s at batch 1 (log scale), one point per rung with an accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i in items:
        if i["accuracy"] is None:
            continue
        x = 1000 / i["b1_ms"]
        ax.scatter([x], [100 * i["accuracy"]], s=60)
        ax.annotate(i["rung"], (x, 100 * i["accuracy"]), textcoords="offset points", xytext=(6, 6),
                    fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("items/s at batch 1, one thread (log scale; round trip through the bench worker)")
    ax.set_ylabel(f"accuracy (%), {data}")
    ax.set_title("The student ladder: accuracy against speed")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Read the bench JSON, write OUT.md and OUT.png, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench_json", type=Path)
    parser.add_argument("--accuracy", default="", help='"rung=value,..." (rungs: ' + ", ".join(RUNGS) + ")")
    parser.add_argument("--data", default="accuracy", help="what the accuracy was measured on")
    parser.add_argument("--out", type=Path, default=Path("bench/out/ladder"))
    args = parser.parse_args(argv)
    accuracy = {}
    for part in filter(None, (p.strip() for p in args.accuracy.split(","))):
        name, _, value = part.partition("=")
        if name not in RUNGS:
            parser.error(f"--accuracy: unknown rung {name!r} (known: {', '.join(RUNGS)})")
        accuracy[name] = float(value)
    items = ladder(args.bench_json, accuracy)
    table = markdown(items, args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    plot(items, args.out.with_suffix(".png"), args.data)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
