#!/usr/bin/env bash
# The test command (README, .ci/run): installs tierflow with every extra into .venv, runs all tests.
# Integration tests start their own servers (llama.cpp on loopback) and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
  .venv/bin/python -m pip install -q -e '.[dev,local]'
exec .venv/bin/python -m pytest tests "$@"
