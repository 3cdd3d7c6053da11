#!/usr/bin/env bash
# The main job (README): install tierflow with the local llama.cpp tiers, then answer a question
# about tierflow's own source with real local models, printing citations and the cost table.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
  .venv/bin/python -m pip install -q -e '.[local]'
QUESTION=${1:-"Where is the function cost_usd defined, and what does it compute?"}
exec .venv/bin/tierflow run codebase_qa "$QUESTION" --root tierflow --profile local --budget-usd 1.0 --unattended
