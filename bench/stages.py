"""Where one text's time goes at batch 1: tokenize, build inputs, session.run, softmax, write.

    python bench/stages.py --bundle B [--texts 256] [--rounds 5] [--threads 1]

The edge's own code path, one stage at a time (Classifier._encode, ._feed, ._run, softmax,
PredictionWriter.write into memory), for each of the bench texts (the shipped example's test split,
sampled as bench/conftest.py does), `rounds` passes after one warm-up pass; medians per stage in
microseconds and their share of the sum.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from jsonout import write_result

from llm2edge.edge import Classifier
from llm2edge.edge.classifier import softmax
from llm2edge.edge.stream import PredictionWriter
from llm2edge.pipeline.bench.texts import sample_texts
from llm2edge.records import Record

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "reddit_humor" / "test.csv"
STAGES = ("tokenize", "build inputs", "session.run", "softmax", "write")


def stage_times(bundle: str | Path, texts: list[str], rounds: int = 5, threads: int = 1) -> dict:
    """Median microseconds per stage over every text and round: {stage: us, ..., total, tokens}."""
    clf = Classifier.load(bundle, threads=threads)
    writer = PredictionWriter(io.StringIO(), "jsonl", clf.labels)
    clock = time.perf_counter_ns
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    for n in range(rounds + 1):
        for i, text in enumerate(texts):
            t0 = clock()
            encodings = clf._encode([text])
            t1 = clock()
            feed = clf._feed(encodings)
            t2 = clock()
            logits = clf._run(feed)
            t3 = clock()
            proba = softmax(logits)
            t4 = clock()
            writer.write([Record(id=f"r{i}", text=text)], proba)
            t5 = clock()
            if n:
                for stage, a, b in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                    samples[stage].append((b - a) / 1000)
        writer.handle.seek(0)
        writer.handle.truncate()
    out = {stage: statistics.median(v) for stage, v in samples.items()}
    out["total"] = sum(out[s] for s in STAGES)
    out["tokens"] = statistics.median(len(e.ids) for e in clf._encode(texts))
    return out


def table(result: dict) -> str:
    """Markdown table of a `stage_times` result."""
    lines = ["| stage (batch 1) | median us | share |", "|---|---:|---:|"]
    lines += [f"| {s} | {result[s]:.1f} | {result[s] / result['total']:.1%} |" for s in STAGES]
    lines.append(f"| sum | {result['total']:.1f} | 100% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = stage_times(args.bundle, sample_texts(EXAMPLE, n=args.texts, seed=0), args.rounds, args.threads)
    print(table(result))
    print(f"median tokens per text: {result['tokens']:.0f}")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
