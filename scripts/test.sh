#!/usr/bin/env bash
# Fresh machine -> the whole test suite, every tier: tests/unit and tests/cli (the fast tier, all a plain
# `pytest` runs), tests/e2e (training and serving for real), tests/browser (the web UI in Chromium) and
# tests/realmodel (SmolLM2-135M-Instruct fine-tuned, exported and served).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
fi
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
# Two test processes (TEST_WORKERS), one torch thread each: the tiny models' steps do not use two
# threads well, and half the suite waits on subprocesses, servers and the browser, so two
# single-threaded workers finish the suite in about half the time of one two-threaded process.
# A file's tests stay in one worker (--dist loadfile).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The real demo model (93 MB) is fetched once into the cache here, outside any test's timeout.
.venv/bin/python -c "from tunestudio.models.demo_model import gguf_file; gguf_file()" \
    || echo "warning: the demo model could not be fetched: the realmodel tests will fail" >&2
# Every tier: pyproject's testpaths name the fast tier alone, so the run names all of tests/ (-o); paths
# given in "$@" take its place, as they take the place of testpaths in a plain `pytest`.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${TEST_WORKERS:-2}" --dist loadfile \
    -o testpaths=tests "$@"
