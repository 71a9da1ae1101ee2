"""The experiment's `+pool` interventions on real recorded answers and a real unlabeled pool (tempowic):
each run labels the pool itself, pool rows that are labeled rows are leakage (or dropped when the data set
says so), and data sets without a pool keep their other rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from llm2edge.errors import ConfigError, DataError  # noqa: E402
from llm2edge.pipeline.experiment.runner import run_experiment  # noqa: E402
from llm2edge.pipeline.experiment.specs import parse_intervention  # noqa: E402


def _config(tmp_path: Path, shared_data: Path, recorded: Path, pool: Path, *, drop: bool = False,
            interventions: str = '"naive", "naive+pool"', check_folds: int = 0) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(f'''
name = "pool test"
data_root = "{shared_data}"
folds = 2
limit = 60
evaluate = "torch"
interventions = [{interventions}]

[[labelers]]
name = "chatgpt"
recorded = "{recorded}"
model = "chatgpt"

[[students]]
name = "head"
student = "head"
max_length = 32
head_epochs = 20
threads = 1

[curate]
folds = 2

[pool]
ratio = 2.0
check_folds = {check_folds}

[[datasets]]
name = "tempowic"
labels = ["different", "same"]
unlabeled = "{pool}"
unlabeled_drop_labeled = {str(drop).lower()}

[[datasets]]
name = "conv_go_awry"
labels = ["derailed", "not_derailed"]
''', encoding="utf-8")
    return path


def _pool(tmp_path: Path, shared_data: Path, extra: list[str] = ()) -> Path:
    with (shared_data / "tempowic" / "unlabeled.csv").open(encoding="utf-8", newline="") as handle:
        texts = [r["text"] for r in csv.DictReader(handle)][:300]
    path = tmp_path / "unlabeled.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([t] for t in [*texts, *extra])
    return path


def test_pool_runs_label_the_pool_themselves(tmp_path: Path, shared_data: Path, recorded: Path) -> None:
    pool = _pool(tmp_path, shared_data)
    result = run_experiment(_config(tmp_path, shared_data, recorded, pool), tmp_path / "out")
    rows = {(r["dataset"], r["intervention"]): r for r in result.rows}
    assert ("tempowic", "naive+pool") in rows and ("tempowic", "naive") in rows
    assert ("conv_go_awry", "naive") in rows and ("conv_go_awry", "naive+pool") not in rows  # no pool
    assert rows[("tempowic", "naive+pool")]["n_pool"] > 0
    for fold in (1, 2):
        run = json.loads((tmp_path / "out" / "runs" / "tempowic" / "chatgpt" / "head" / "naive+pool" /
                          f"fold-{fold}" / "result.json").read_text(encoding="utf-8"))["row"]
        assert run["pool_usable"] == 300 and 0 < run["n_pool"] <= 2 * 30
        assert run["n_train"] == 30  # the labeled rows; the pool rows are counted apart
    again = run_experiment(_config(tmp_path, shared_data, recorded, pool), tmp_path / "out")
    assert again.n_cached == again.n_runs  # a rerun redoes nothing
    changed = run_experiment(_config(tmp_path, shared_data, recorded, pool, check_folds=2), tmp_path / "out")
    assert changed.n_runs - changed.n_cached == 2  # the pool settings enter only the +pool runs' keys


def test_a_pool_row_that_is_a_labeled_row_is_leakage(tmp_path: Path, shared_data: Path, recorded: Path
                                                     ) -> None:
    with (recorded / "tempowic__chatgpt.csv").open(encoding="utf-8", newline="") as handle:
        labeled = [r["text"] for r in csv.DictReader(handle)]
    pool = _pool(tmp_path, shared_data, extra=labeled[:60])
    with pytest.raises(DataError, match=r"unlabeled.csv:\d+: this unlabeled pool row of data set 'tempowic' "
                                        r"is also a labeled \(test\) row: leakage"):
        run_experiment(_config(tmp_path, shared_data, recorded, pool), tmp_path / "leak")
    result = run_experiment(_config(tmp_path, shared_data, recorded, pool, drop=True), tmp_path / "drop")
    run = json.loads(next((tmp_path / "drop" / "runs").rglob("naive+pool/fold-1/result.json"))
                     .read_text(encoding="utf-8"))["row"]
    assert run["pool_dropped"] >= 1 and run["pool_usable"] == 300 + 60 - run["pool_dropped"]
    assert any(r["intervention"] == "naive+pool" for r in result.rows)


def test_pool_is_the_last_step() -> None:
    assert parse_intervention("naive+pool") == ("naive", "pool")
    assert parse_intervention("experts_crossval+soft+pool") == ("experts_crossval", "soft", "pool")
    with pytest.raises(ConfigError, match="'pool' comes last"):
        parse_intervention("pool+soft")
    with pytest.raises(ConfigError, match="'naive' cannot be combined"):
        parse_intervention("naive+soft+pool")
