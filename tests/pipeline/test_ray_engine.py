"""`llm2edge predict --engine ray` and BundlePredictor on a real local Ray cluster (2 CPUs, no dashboard),
against single-process `llm2edge predict`, with a tiny real ONNX bundle.

Without the `ray` extra these skip with the pip hint (fail under LLM2EDGE_REQUIRE_ENGINES=1, as in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

LABELS = ["negative", "neutral", "positive"]
HINT = "this needs the 'ray' extra (ray is not installed): pip install 'llm2edge[ray]'"


@pytest.fixture(scope="module")
def ray_local(engines):
    """A real local Ray cluster with 2 CPUs in this process (the CLI run in-process uses it)."""
    engines.require_engine("ray")
    import logging

    from llm2edge.pipeline import ray_engine  # sets Ray's telemetry off, then imports ray

    ray = ray_engine.ray
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


def read_folder(folder: Path) -> list[dict[str, object]]:
    """Every row of a Parquet folder, in Ray's part order (the rows' input order)."""
    import pyarrow.parquet as pq

    return pq.read_table(folder).to_pylist()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_engine_equals_single_process_predict_on_100k_rows(engines, ray_local, cli, tiny, parts_100k,
                                                               tmp_path, capsys):
    folder, _, expected = parts_100k
    out = tmp_path / "out"
    assert cli("predict", "-b", tiny, "--engine", "ray", "--workers", "2", "--input", folder,
               "--output", out) == 0
    err = capsys.readouterr().err
    assert "100,000 rows from 8 file(s)" in err and "on 2 Ray worker(s)" in err, err
    rows = read_folder(out)
    assert list(rows[0]) == ["id", "label", *(f"p_{n}" for n in LABELS)]
    engines.assert_same_predictions(rows, expected, LABELS)
    assert len({r["id"] for r in rows}) == 100_000


@pytest.mark.timeout(600)
def test_bundle_predictor_in_a_ray_data_pipeline_keeps_every_column(engines, ray_local, tiny, parts_100k):
    """The documented use: ds.map_batches(BundlePredictor, ...) on Ray's own reader. The actor pool
    autoscales from 1: a fixed pool as large as the cluster would hold every CPU, and Ray's reader needs
    one too."""
    import ray.data

    from llm2edge.pipeline.ray_engine import BundlePredictor

    _, parts, expected = parts_100k
    ds = ray.data.read_parquet([str(p) for p in parts[4:6]])  # 25,000 rows with an id column
    want = expected[50_000:75_000]
    order = {r["id"]: n for n, r in enumerate(want)}
    for fmt in ("pandas", "pyarrow"):
        got = ds.map_batches(BundlePredictor, fn_constructor_kwargs={"bundle": str(tiny)},
                             compute=ray.data.ActorPoolStrategy(min_size=1, max_size=2), num_cpus=1,
                             batch_size=4096,
                             batch_format=fmt).to_pandas()
        assert list(got.columns) == ["id", "text", "label", *(f"p_{n}" for n in LABELS)], fmt
        rows = sorted(got.to_dict("records"), key=lambda r: order[r["id"]])
        engines.assert_same_predictions(rows, want, LABELS)


@pytest.mark.timeout(300)
def test_a_worker_error_is_one_line_naming_the_file(ray_local, cli, tiny, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("text\nhello\nworld\n")
    (tmp_path / "in" / "b.jsonl").write_text('{"text": "ok"}\n{"text": 5}\n')
    assert cli("predict", "-b", tiny, "--engine", "ray", "--input", tmp_path / "in",
               "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    bad = tmp_path / "in" / "b.jsonl"
    assert err.endswith(f"llm2edge: error: {bad}:2: column 'text' holds a number, not a string\n"), err
    assert "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []  # no partial parts left behind


def test_more_workers_than_the_cluster_has_cpus_is_refused(ray_local, cli, tiny, parts_100k, tmp_path,
                                                           capsys):
    folder, _, _ = parts_100k
    assert cli("predict", "-b", tiny, "--engine", "ray", "--workers", "3", "--input", folder,
               "--output", tmp_path / "out") == 2
    assert "3 workers x 1 thread(s) need 3 CPUs; the Ray cluster has 2" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_cli_joins_a_ray_cluster_started_with_ray_start(engines, tiny, parts_100k, tmp_path):
    """A cluster started by `ray start --head` (2 CPUs), then `llm2edge predict --address HOST:PORT` in its
    own process: the summary line and nothing else of Ray's on stderr but its one actor-pool notice."""
    engines.require_engine("ray")
    _, parts, expected = parts_100k
    port = _free_port()
    # Ray's token authentication (on by default) is enabled for an explicit address only when asked.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "token"}
    ray_bin = Path(sys.executable).with_name("ray")
    log = tmp_path / "head.log"
    temp = tempfile.mkdtemp(prefix="l2e-ray-")  # Ray's socket paths must stay under 108 bytes
    with log.open("w") as handle:
        head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                                 "--include-dashboard=false", "--disable-usage-stats",
                                 f"--temp-dir={temp}"],
                                stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in log.read_text() and head.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        assert head.poll() is None, log.read_text()
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-c", "from llm2edge.cli import main; main()", "predict", "-b",
                               str(tiny), "--engine", "ray", "--address", f"127.0.0.1:{port}", "--input",
                               str(parts[5]), "--output", str(out)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if "core_worker.cc" not in line]  # ray#53727
        assert len(lines) == 1 and "12,500 rows from 1 file(s)" in lines[0], proc.stderr
        assert "on 2 Ray worker(s)" in lines[0]
        engines.assert_same_predictions(read_folder(out), expected[62_500:75_000], LABELS)
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
            head.wait(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_usage_telemetry_is_off_unless_the_user_set_it(engines):
    engines.require_engine("ray")
    script = ("import os, llm2edge.pipeline.ray_engine\nfrom ray._common.usage import usage_lib\n"
              "print(os.environ['RAY_USAGE_STATS_ENABLED'], usage_lib.usage_stats_enabled())")
    env = {k: v for k, v in os.environ.items() if k != "RAY_USAGE_STATS_ENABLED"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.stdout.split() == ["0", "False"], proc.stderr
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**env, "RAY_USAGE_STATS_ENABLED": "1"})
    assert proc.stdout.split() == ["1", "True"], proc.stderr


# ------------------------------------------------------------------------------ without the `ray` extra

IMPORT_AND_RUN = """
import importlib.util, json, sys
from llm2edge.errors import MissingExtraError
assert importlib.util.find_spec("ray") is None, "ray is still importable"
out = {}
try:
    import llm2edge.pipeline.ray_engine
except MissingExtraError as exc:
    out["import"] = str(exc)
import llm2edge.pipeline.predictor  # the engine-agnostic part needs no ray
print(json.dumps(out))
"""


def test_without_the_extra_the_module_and_the_cli_name_the_pip_command(engines, tiny, tmp_path):
    site = engines.site_without("ray", tmp_path / "site")
    proc = engines.run_in_site(site, IMPORT_AND_RUN)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"import": HINT}
    (tmp_path / "a.csv").write_text("text\nhello\n")
    cli = engines.run_in_site(site, "from llm2edge.cli import main\nmain(sys.argv[2:])", "predict", "-b",
                  str(tiny), "--engine", "ray", "--input", str(tmp_path / "a.csv"), "--output",
                  str(tmp_path / "out"))
    assert cli.returncode == 2 and cli.stderr == f"llm2edge: error: {HINT}\n", cli.stderr
