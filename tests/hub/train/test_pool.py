"""`train --unlabeled` for real: the packaged MiniLM embeds a pool of movie-review snippets in chunks (cached
in the user cache, resumed after a crash), self-training or the out-of-fold models label it, and the static,
frozen-encoder and fine-tuned students learn from it; bad pools fail in one line or warn with counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm2edge.errors import ConfigError, DataError  # noqa: E402
from llm2edge.hub.curate.embed import Encoder  # noqa: E402
from llm2edge.hub.train import PoolConfig, TrainConfig, train  # noqa: E402
from llm2edge.hub.train.pool_cache import PoolCache, open_pool, pool_texts  # noqa: E402
from llm2edge.hub.train.pool_labels import quotas, select  # noqa: E402
from tests.helpers import read_csv, write_csv  # noqa: E402

MOVIES = Path(__file__).resolve().parents[3] / "examples" / "movie_sentiment"
FAST = {"max_length": 32, "dims": 32, "head_epochs": 20, "threads": 1, "progress": False, "seed": 3}


def _rows(name: str) -> list[dict[str, str]]:
    return read_csv(MOVIES / name)


@pytest.fixture(autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user cache of this module's own (the pool's embeddings; the static table is distilled once)."""
    folder = tmp_path_factory.getbasetemp() / "pool-user-cache"
    monkeypatch.setenv("LLM2EDGE_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """120 labeled snippets, a 400-row pool (10 of them labeled rows, 5 eval rows, 3 blank), 100 eval rows."""
    d = tmp_path_factory.mktemp("pool-data")
    train_rows, test_rows = _rows("train.csv"), _rows("test.csv")
    labeled, rest, evals = train_rows[:120], train_rows[120:505], test_rows[:100]
    pool = [{"text": r["text"]} for r in rest] + [{"text": "  " + r["text"]} for r in labeled[:10]] + \
        [{"text": r["text"]} for r in evals[:5]] + [{"text": " "}] * 3
    return {"train": write_csv(d / "train.csv", labeled, ["text", "label"]),
            "eval": write_csv(d / "eval.csv", evals, ["text", "label"]),
            "pool": write_csv(d / "pool.csv", pool, ["text"])}


def _meta(out: Path) -> dict:
    return json.loads((out / "train_meta.json").read_text(encoding="utf-8"))


def test_static_student_learns_from_the_pool(movies: dict[str, Path], tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    result = train(TrainConfig(data=movies["train"], eval_data=movies["eval"], out=out, student="static",
                               unlabeled=movies["pool"], **FAST))
    pool = _meta(out)["pool"]
    assert pool["read"] == 403 and pool["empty"] == 3
    assert pool["dropped_labeled"] == 10 and pool["dropped_eval"] == 5
    assert pool["usable"] == 385
    assert 0 < pool["used"] <= min(385, 4 * 108)  # the budget: ratio 4 x the 108 training rows
    assert pool["method"] == "self" and len(pool["mean_confidence_per_round"]) == 2
    assert sum(pool["kept_per_class"]) == pool["used"]
    chosen = [json.loads(line) for line in (out / "pool" / "rows.jsonl").open(encoding="utf-8")]
    assert len(chosen) == pool["used"]
    labeled = {r["text"] for r in _rows("train.csv")[:120]} | {r["text"] for r in _rows("test.csv")[:100]}
    assert not {r["text"] for r in chosen} & labeled  # no labeled or eval row comes back as a pool row
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-5 for r in chosen)
    assert _meta(out)["train_rows"] == 108 + pool["used"]
    assert result.metrics is not None and result.metrics["accuracy"] > 0.55
    err = capfd.readouterr().err
    assert "3 of 403 pool rows have an empty text" in err
    assert "10 pool rows are labeled rows and 5 are --eval rows" in err


def test_same_run_same_pool_rows_and_the_cache_is_reused(movies: dict[str, Path], tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        train(TrainConfig(data=movies["train"], out=out, student="static", unlabeled=movies["pool"], **FAST))
    first, second = ((o / "pool" / "rows.jsonl").read_text(encoding="utf-8") for o in outs)
    assert first == second
    assert "embeddings cached in" in capfd.readouterr().err  # the second run read no pool text to embed
    a, b = ((o / "model.safetensors").read_bytes() for o in outs)
    assert a == b


def test_oof_method_and_fingerprint(movies: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "oof"
    train(TrainConfig(data=movies["train"], out=out, student="static", unlabeled=movies["pool"],
                      pool=PoolConfig(method="oof", ratio=1.0), **FAST))
    pool = _meta(out)["pool"]
    assert pool["method"] == "oof" and pool["rounds"] == 1 and pool["budget"] == 108
    assert 0 < pool["used"] <= 108
    plain = tmp_path / "plain"
    train(TrainConfig(data=movies["train"], out=plain, student="static", **FAST))
    assert _meta(plain)["pool"] is None
    assert _meta(plain)["config_hash"] != _meta(out)["config_hash"]


def test_a_crashed_embedding_resumes_at_the_first_missing_chunk(tmp_path: Path) -> None:
    pool = write_csv(tmp_path / "pool.csv", [{"text": r["text"]} for r in _rows("train.csv")[:50]], ["text"])
    encoder = Encoder(None, max_length=16, threads=1)
    calls: list[int] = []

    def crashing(texts: list[str]) -> np.ndarray:
        if calls:
            raise KeyboardInterrupt  # killed while embedding the second chunk
        calls.append(len(texts))
        return encoder.encode(texts)

    root = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        open_pool(pool, "text", model=None, max_length=16, chunk_size=20, encode=crashing, cache_root=root)

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return encoder.encode(texts)

    cache = open_pool(pool, "text", model=None, max_length=16, chunk_size=20, encode=counting,
                      cache_root=root)
    assert calls == [20, 20, 10]  # chunk 1 was not embedded again
    assert cache.rows == 50 and cache.n_chunks == 3
    whole = np.concatenate([x for _, x in cache.chunks()])
    np.testing.assert_allclose(whole, encoder.encode([r["text"] for r in _rows("train.csv")[:50]]), atol=1e-5)


def test_selection_keeps_per_class_quotas_and_never_the_skipped_rows() -> None:
    rng = np.random.default_rng(0)
    chunks = [(np.arange(i * 100, (i + 1) * 100), rng.normal(size=(100, 4))) for i in range(5)]

    def predict(x: np.ndarray) -> np.ndarray:
        z = np.stack([x[:, 0], -x[:, 0] * 0.1], axis=1)  # class 0 gets most rows
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    quota = quotas(np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 1), 40)
    assert quota.tolist() == [30, 10]
    rows, probs = select(predict, iter(chunks), quota)
    assert np.bincount(probs.argmax(axis=1)).tolist() == [30, 10]
    assert list(rows) == sorted(rows)
    every = np.concatenate([predict(x) for _, x in chunks])
    top0 = np.sort(every[every.argmax(axis=1) == 0][:, 0])[::-1][:30]
    np.testing.assert_allclose(np.sort(probs[probs.argmax(axis=1) == 0][:, 0])[::-1], top0)


def test_freeze_encoder_student_with_a_pool(movies: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frozen"
    result = train(TrainConfig(data=movies["train"], eval_data=movies["eval"], out=out, freeze_encoder=True,
                               unlabeled=movies["pool"], max_length=32, head_epochs=20, threads=1,
                               progress=False, pool=PoolConfig(ratio=1.0)))
    meta = _meta(out)
    assert meta["pool"]["used"] > 0 and meta["soft_labels"] is False
    assert meta["train_rows"] == 108 + meta["pool"]["used"]
    assert result.metrics is not None and result.metrics["accuracy"] > 0.6


@pytest.mark.slow
def test_fine_tuned_student_with_a_pool(movies: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    result = train(TrainConfig(data=movies["train"], eval_data=movies["eval"], out=out, epochs=1, min_steps=0,
                               unlabeled=movies["pool"], max_length=32, threads=1, progress=False,
                               pool=PoolConfig(ratio=0.5)))
    meta = _meta(out)
    assert meta["pool"]["used"] == 54 and meta["train_rows"] == 108 + 54
    assert result.metrics is not None and result.metrics["n"] == 100


# ------------------------------------------------------------------ bad pools


def test_bad_pools_fail_in_one_line(movies: dict[str, Path], tmp_path: Path, cli) -> None:
    wrong = write_csv(tmp_path / "wrong.csv", [{"body": "a text"}], ["body"])
    with pytest.raises(DataError, match=r"wrong.csv: the unlabeled pool has no column 'text' \(columns: bod"):
        train(TrainConfig(data=movies["train"], out=tmp_path / "w", student="static", unlabeled=wrong,
                          **FAST))
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text('{"text": "fine"}\n{"text": 42}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"numbers.jsonl:2: column 'text' of the unlabeled pool holds int"):
        list(pool_texts(numbers, "text"))
    with pytest.raises(ConfigError, match="--unlabeled names no such file or folder"):
        TrainConfig(data=movies["train"], out=tmp_path / "x", unlabeled=tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="pool method must be one of self, oof"):
        PoolConfig(method="magic")
    code = cli("train", "--data", movies["train"], "--out", tmp_path / "c", "--student", "static",
               "--unlabeled", wrong, "--dims", "32", "--threads", "1")
    assert code == 2


@pytest.mark.parametrize("kind", ["empty", "identical"])
def test_a_pool_with_no_usable_row_says_so(kind: str, movies: dict[str, Path], tmp_path: Path,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    rows = [] if kind == "empty" else [{"text": r["text"]} for r in _rows("train.csv")[:120]]
    pool = tmp_path / "pool.csv"
    if rows:
        write_csv(pool, rows, ["text"])
    else:
        pool.write_text("text\n", encoding="utf-8")
    out = tmp_path / kind
    train(TrainConfig(data=movies["train"], out=out, student="static", unlabeled=pool, **FAST))
    meta = _meta(out)
    assert meta["pool"]["used"] == 0 and meta["train_rows"] == 108
    err = capfd.readouterr().err
    assert "the unlabeled pool has no usable rows" in err and "training on the labeled rows only" in err
    if kind == "identical":
        assert meta["pool"]["dropped_labeled"] == 120


def test_a_folder_pool(movies: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "pool"
    folder.mkdir()
    rest = _rows("train.csv")[120:320]
    write_csv(folder / "a.csv", [{"text": r["text"]} for r in rest[:100]], ["text"])
    (folder / "b.jsonl").write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rest[100:]),
                                    encoding="utf-8")
    cache = open_pool(folder, "text", model=None, max_length=16, chunk_size=64,
                      encode=Encoder(None, max_length=16, threads=1).encode, cache_root=tmp_path / "c")
    assert isinstance(cache, PoolCache) and cache.rows == 200 and cache.n_chunks == 4


def test_the_guard_records_its_check_and_obeys_it(movies: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "guarded"
    train(TrainConfig(data=movies["train"], out=out, student="static", unlabeled=movies["pool"],
                      pool=PoolConfig(check_folds=3), **FAST))
    check = _meta(out)["pool"]["check"]
    assert check["folds"] == 3 and 0 <= check["agreement_without"] <= 1 and 0 <= check["agreement_with"] <= 1
    assert check["kept"] == (check["agreement_with"] >= check["agreement_without"])
    assert (_meta(out)["pool"]["used"] > 0) == check["kept"]
