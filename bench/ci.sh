#!/usr/bin/env bash
# The CI subset of bench/: edge int8/fp32 at batch 1 and 32 and torch eager at batch 1, each in its own
# worker process with the same thread count, timed by pytest-benchmark, the edge stream row at 2 threads, and
# start-up against the floor (bench/test_startup.py); then the ratio gates (bench/gates.py).
# Writes bench/out/ci.json (pytest-benchmark JSON), bench/out/startup.json and bench/out/summary.{md,json,png}.
# The bench bundle is built on the first run and cached in .bench-cache/ (keyed by the source code hash).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export LLM2EDGE_BENCH_BUDGET=${LLM2EDGE_BENCH_BUDGET:-2}
mkdir -p bench/out
t0=$(date +%s)
echo "bench/ci.sh: load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'), threads per system ${LLM2EDGE_BENCH_THREADS:-1}"
"$py" -m pytest bench -m ci --benchmark-only --benchmark-json=bench/out/ci.json -q -p no:cacheprovider \
  --benchmark-columns=median,iqr,rounds --benchmark-sort=name
"$py" bench/gates.py bench/out/ci.json bench/out/startup.json
echo "bench/ci.sh: done in $(( $(date +%s) - t0 )) s"
