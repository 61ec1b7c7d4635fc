#!/usr/bin/env bash
# Fresh machine -> the web UI on http://127.0.0.1:7860 with the demo model and demo datasets ready.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev bash scripts/setup.sh
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
.venv/bin/tunestudio demo
exec .venv/bin/tunestudio webui "$@"
