"""`llm2edge predict --engine ray` and BundlePredictor on a real local Ray cluster (2 CPUs, no dashboard),
against single-process `llm2edge predict`, with a tiny real ONNX bundle.

Without the `ray` extra these skip with the pip hint (fail under LLM2EDGE_REQUIRE_ENGINES=1, as in CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
    own process: the summary line and nothing of Ray's on stderr."""
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
        lines = proc.stderr.splitlines()  # none of Ray's own lines (46a276a: a core_worker.cc error line)
        assert len(lines) == 1 and "12,500 rows from 1 file(s)" in lines[0], proc.stderr
        assert "on 2 Ray worker(s)" in lines[0]
        engines.assert_same_predictions(read_folder(out), expected[62_500:75_000], LABELS)
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
            head.wait(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


# ------------------------------------------------------------------ a busy machine, a bad address, a stall

ROWS, FILES, CHUNK = 6_000, 5, 500  # more files than workers, 3 blocks per file


@pytest.fixture(scope="module")
def small_parts(engines, tiny, tmp_path_factory):
    """6,000 example texts in 5 Parquet files, and single-process predict's rows for them."""
    root = tmp_path_factory.mktemp("parts6k")
    parts = engines.write_parts(root / "in", ROWS, FILES)
    return root / "in", engines.single_process(tiny, parts, root / "expected")


@contextlib.contextmanager
def busy_loops(n: int):
    """`n` plain busy loops (`python3 -c "while True: pass"`) at the default priority, killed on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=30)


def _timed_run(cli, tiny, folder, out) -> float:
    start = time.monotonic()
    assert cli("predict", "-b", tiny, "--engine", "ray", "--workers", "2", "--chunk-size", CHUNK,
               "--input", folder, "--output", out) == 0
    return time.monotonic() - start


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ray_finishes_beside_one_busy_loop_per_cpu_within_3x_its_quiet_time(engines, ray_local, cli, tiny,
                                                                             small_parts, tmp_path, capsys):
    """Workers = the cluster's CPUs, more files than workers, a busy loop per CPU beside them: on 46a276a the
    workers ran at niceness 15 and Ray Data's column drop waited for a CPU the actors held (no progress
    for 20 minutes); now the better of two runs finishes within 3x the quiet time, rows equal to
    single-process predict."""
    from llm2edge.edge.threads import available_cpus

    folder, expected = small_parts
    _timed_run(cli, tiny, folder, tmp_path / "warm")  # Ray's first start-up paid once, as on any later run
    before = _timed_run(cli, tiny, folder, tmp_path / "quiet")
    with busy_loops(max(2, available_cpus())):
        # the better of two runs: a one-off hiccup of a 1-2 s run on a shared CI machine is not a stall
        # (CI once measured 3.27x on one run); a stall like 46a276a's fails both runs by minutes
        busy = min(_timed_run(cli, tiny, folder, tmp_path / "busy"),
                   _timed_run(cli, tiny, folder, tmp_path / "busy2"))
    after = _timed_run(cli, tiny, folder, tmp_path / "after")
    quiet = max(before, after)  # the quiet time under this machine's other load, before and after
    err = capsys.readouterr().err
    print(f"quiet {before:.1f} / {after:.1f} s, beside busy loops {busy:.1f} s ({busy / quiet:.2f}x)")
    assert busy <= 3 * quiet, f"quiet {before:.1f} / {after:.1f} s, busy {busy:.1f} s"
    for name in ("quiet", "busy", "busy2"):
        rows = read_folder(tmp_path / name)
        assert list(rows[0]) == ["id", "label", *(f"p_{n}" for n in LABELS)]
        engines.assert_same_predictions(rows, expected, LABELS)
    assert "6,000 rows from 5 file(s)" in err and "core_worker" not in err, err


def _cli_process(*args: object, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """`llm2edge ARGS...` in its own process (its own Ray), stderr captured."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    return subprocess.Popen([sys.executable, "-c", "from llm2edge.cli import main; main()",
                             *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)


@pytest.mark.timeout(120)
def test_an_unreachable_address_fails_within_seconds_naming_it(engines, tiny, tmp_path):
    """Nothing listening at --address: one line naming that address, exit 2, in seconds (46a276a: past
    120 s of Ray's retry warnings naming another address)."""
    engines.require_engine("ray")
    (tmp_path / "a.csv").write_text("text\nhello\n")
    address = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    proc = _cli_process("predict", "-b", tiny, "--engine", "ray", "--address", address, "--input",
                        tmp_path / "a.csv", "--output", tmp_path / "out")
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - start
    assert proc.returncode == 2 and took < 30, (took, err)
    assert err == f"llm2edge: error: cannot connect to Ray at '{address}': Connection refused\n", err


def test_an_address_where_another_service_answers_is_refused_naming_it(engines):
    """A port that answers, but not as Ray's gRPC (a web server, a typo'd port): one line, not Ray's
    minutes of retries."""
    engines.require_engine("ray")
    from llm2edge.errors import EngineError
    from llm2edge.pipeline.ray_address import probe_address

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(EngineError, match=f"cannot connect to Ray at '{address}': something answers "
                                              "there, but not Ray"):
            probe_address(address)
        thread.join(timeout=10)
    for word in ("local", "auto"):
        probe_address(word)  # nothing to check: ray.init decides


@pytest.mark.timeout(300)
def test_the_stall_watchdog_stops_the_run_with_one_line(ray_local, cli, tiny, small_parts, tmp_path, capsys):
    """No progress for --stall-timeout (here 0.05 s: a block takes longer) -> one line naming the stage,
    the address and the rows done; exit 2; no part left; the run's actors gone (their CPUs free again)."""
    folder, _ = small_parts
    out = tmp_path / "out"
    assert cli("predict", "-b", tiny, "--engine", "ray", "--workers", "2", "--chunk-size", CHUNK,
               "--stall-timeout", "0.05", "--input", folder, "--output", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.fullmatch(r"llm2edge: error: Ray made no progress for 0\.05 s \(--stall-timeout\) while "
                        r"(starting the workers|reading|predicting) .*, on the Ray of this process at "
                        r"\S+:\d+; [\d,]+ rows done; the run was stopped\n", err), err
    assert list(out.iterdir()) == []
    deadline = time.monotonic() + 60
    while ray_local.available_resources().get("CPU", 0) < 2:
        assert time.monotonic() < deadline, ray_local.available_resources()
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_workers_run_at_the_drivers_niceness(engines, tiny, small_parts, tmp_path):
    """Ray starts workers at niceness 15; the run's tasks and actors run at the driver's (here 7)."""
    engines.require_engine("ray")
    folder, expected = small_parts
    out = tmp_path / "out"
    proc = _cli_process("predict", "-b", tiny, "--engine", "ray", "--workers", "2", "--chunk-size", CHUNK,
                        "--input", folder, "--output", out, preexec_fn=lambda: os.nice(7))
    seen: dict[str, set[int]] = {}
    while proc.poll() is None:
        ps = subprocess.run(["ps", "-eo", "pid=,ppid=,ni=,args="], capture_output=True, text=True).stdout
        rows = [line.split(None, 3) for line in ps.splitlines() if len(line.split(None, 3)) == 4]
        parent = {int(pid): int(ppid) for pid, ppid, _, _ in rows}
        for pid, _, ni, args in rows:
            up = int(pid)
            while up > 1 and up != proc.pid:  # only this run's processes (its own local Ray)
                up = parent.get(up, 0)
            if up == proc.pid and args.startswith(("ray::PartWriter", "ray::read_blocks")):
                seen.setdefault(args.split(".")[0], set()).add(int(ni))
        time.sleep(0.2)
    assert proc.returncode == 0, proc.stderr.read()
    assert seen.get("ray::PartWriter") == {7} and seen.get("ray::read_blocks", {7}) == {7}, seen
    engines.assert_same_predictions(read_folder(out), expected, LABELS)


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
