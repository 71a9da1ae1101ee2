#!/usr/bin/env bash
# The CI image stage: install podman/debootstrap if missing, build (or reuse) the local Debian base,
# build Dockerfile.edge, classify with a real bundle inside the image and compare with the host edge
# runtime, lint both Dockerfiles. Image sizes and timings go to $LLM2EDGE_CONTAINER_OUT/images.json.
#   scripts/container/test-images.sh [pytest args]      (LLM2EDGE_CONTAINER_HUB=1: also build the hub, CPU)
set -euo pipefail
cd "$(dirname "$0")/../.."
export LLM2EDGE_REQUIRE_CONTAINER="${LLM2EDGE_REQUIRE_CONTAINER:-1}"
export LLM2EDGE_CONTAINER_OUT="${LLM2EDGE_CONTAINER_OUT:-$PWD/out/container}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
bash scripts/container/ensure-tools.sh >/dev/null
py="${PYTHON:-.venv/bin/python}"
t0=$(date +%s)
"$py" -m pytest tests/container -q -p no:cacheprovider -rA "$@"
echo "== container image stage took $(( $(date +%s) - t0 )) s; results in $LLM2EDGE_CONTAINER_OUT/images.json"
