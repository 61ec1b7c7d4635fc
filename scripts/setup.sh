#!/usr/bin/env bash
# Set up tunestudio in ./.venv. torch goes in first and pinned, so nothing later pulls a
# multi-gigabyte CUDA build; on a GPU machine set TORCH_SPEC (e.g. "torch==2.13.0" with
# TORCH_INDEX=https://download.pytorch.org/whl/cu128) before running this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if [ -n "${TORCH_INDEX:-}" ]; then
        .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}" --index-url "$TORCH_INDEX"
    else
        .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
    fi
fi
.venv/bin/python -m pip install -q -e ".[${EXTRAS:-dev}]"
