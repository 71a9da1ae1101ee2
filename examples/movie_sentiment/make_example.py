"""Rebuild examples/movie_sentiment/{train,test}.csv from the vaderSentiment 3.3.2 sdist (MIT).

    pip download --no-deps --no-binary :all: vaderSentiment==3.3.2
    python examples/movie_sentiment/make_example.py vaderSentiment-3.3.2.tar.gz

The sdist holds additional_resources/hutto_ICWSM_2014.tar.gz, whose movieReviewSnippets_GroundTruth.txt has
10,605 movie-review snippets, each with the mean of 20 human sentiment ratings on a -4..4 scale. A snippet is
`positive` at a mean of +0.5 or more, `negative` at -0.5 or less; the near-neutral ones in between are left
out. Text cleaning: whitespace trimmed, the source's '' quotes written as ", exact duplicates dropped. Then
1,800 snippets are drawn with random.Random(0) and split 1,200 train / 600 test.
"""

from __future__ import annotations

import csv
import io
import random
import sys
import tarfile
from collections import Counter
from pathlib import Path

SNIPPETS = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
THRESHOLD = 0.5
N_TRAIN, N_TEST, SEED = 1200, 600, 0


def read_snippets(sdist: Path) -> list[tuple[str, float]]:
    """(text, mean rating) of every movie-review snippet in the vaderSentiment sdist."""
    with tarfile.open(sdist) as outer:
        inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        inner_bytes = outer.extractfile(inner_member).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        raw = inner.extractfile(SNIPPETS).read().decode("utf-8")  # type: ignore[union-attr]
    rows = []
    for line in raw.splitlines():
        _, score, text = line.split("\t")
        rows.append((" ".join(text.replace("''", '"').split()), float(score)))
    return rows


def main(sdist: str) -> None:
    """Write train.csv and test.csv next to this script and print the label counts."""
    seen: set[str] = set()
    pool = []
    for text, score in read_snippets(Path(sdist)):
        if abs(score) < THRESHOLD or not text or text in seen:
            continue
        seen.add(text)
        pool.append((text, "positive" if score > 0 else "negative"))
    picked = random.Random(SEED).sample(pool, N_TRAIN + N_TEST)
    here = Path(__file__).resolve().parent
    for name, rows in (("train", picked[:N_TRAIN]), ("test", picked[N_TRAIN:])):
        with (here / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        print(name, len(rows), dict(sorted(Counter(label for _, label in rows).items())))
    print("pool", len(pool), dict(sorted(Counter(label for _, label in pool).items())))


if __name__ == "__main__":
    main(sys.argv[1])
