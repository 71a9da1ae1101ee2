"""Rebuild examples/reddit_emotions/{train,test}.csv from GoEmotions' ekman taxonomy (CC BY 4.0).

    python examples/reddit_emotions/make_example.py PATH/goemotions_ekman

PATH/goemotions_ekman holds train.csv and test.csv (columns text,labels; labels `;`-joined), made from
github monologg/GoEmotions-pytorch `data/ekman/{train,dev,test}.tsv` (snapshot b75f9d3a), the GoEmotions
release (google-research/google-research `goemotions/data`) mapped to Ekman's emotions plus neutral
(whitespace collapsed, empty texts, exact duplicates, conflicting sets and train/test overlaps dropped).
This script draws 1,200 train rows from its train.csv and 600 test rows from its test.csv with
random.Random(0), renames the column to `label` and keeps every row's label set as it is.
"""

from __future__ import annotations

import csv
import random
import sys
from collections import Counter
from pathlib import Path

N_TRAIN, N_TEST, SEED = 1200, 600, 0


def draw(path: Path, n: int, rng: random.Random) -> list[tuple[str, str]]:
    """`n` (text, labels) rows of a goemotions_ekman CSV, drawn without replacement, in file order."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(r["text"], r["labels"]) for r in csv.DictReader(handle)]
    keep = sorted(rng.sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def main(source: str) -> None:
    """Write train.csv and test.csv next to this script and print the label counts."""
    rng = random.Random(SEED)
    here = Path(__file__).resolve().parent
    for name, n in (("train", N_TRAIN), ("test", N_TEST)):
        rows = draw(Path(source) / f"{name}.csv", n, rng)
        with (here / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        counts = Counter(label for _, labels in rows for label in labels.split(";"))
        sizes = Counter(len(labels.split(";")) for _, labels in rows)
        print(name, len(rows), dict(sorted(counts.items())), "labels per row", dict(sorted(sizes.items())))


if __name__ == "__main__":
    main(sys.argv[1])
