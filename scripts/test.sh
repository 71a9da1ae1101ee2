#!/usr/bin/env bash
# The README's test command: builds the virtualenvs it needs, then runs ruff, the whole test suite
# (slow end-to-end tests included) and the CI benchmark subset with its ratio gates.
# .ci/run runs exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ "${CI:-}" = "true" ]; then
  # In CI nothing may be skipped for lack of a component that the setup below installs.
  export LLM2EDGE_REQUIRE_SERVER=1 LLM2EDGE_REQUIRE_CONTAINER=1 LLM2EDGE_REQUIRE_ENGINES=1
fi
t0=$(date +%s)
echo "== setup: hub+export+dev virtualenv (.venv), base-only edge virtualenv (.venv-edge)"
bash scripts/setup.sh .venv --with-server
bash scripts/setup.sh .venv-edge --base-only
export LLM2EDGE_EDGE_VENV="$PWD/.venv-edge"
echo "== setup took $(( $(date +%s) - t0 )) s"

echo "== ruff"
.venv/bin/ruff check .

echo "== import contracts (layers; the edge imports no torch)"
bash scripts/lint-imports.sh

echo "== tests"
.venv/bin/python -m pytest tests -q -p no:cacheprovider --durations=15

echo "== benchmarks (CI subset, ratio gates)"
bash bench/ci.sh
echo "== all done in $(( $(date +%s) - t0 )) s"
