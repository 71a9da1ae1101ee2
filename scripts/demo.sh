#!/usr/bin/env bash
# The README's main job on a fresh machine: build the virtualenv, then run the whole pipeline
# (LLM labels → curation → student training → int8 ONNX bundle → edge predictions → benchmark → report)
# on the shipped example dataset with the embedded models. Extra arguments go to `llm2edge demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
bash scripts/setup.sh .venv
exec .venv/bin/llm2edge demo --out runs/demo "$@"
