"""Shared fixtures (an offline environment, the demo workspace, a tiny model to train) and the tiers.

Every test runs with HF_HUB_OFFLINE=1: models and data come from what the project makes itself.
Plain functions the tests import live in helper modules beside this file (helpers.py: paths and
`run_cli`; workspaces.py: what the fixtures below build), importable from every folder (pyproject's
pytest `pythonpath`).

The tiers are folders: tests/unit/<package> (in-process) and tests/cli (`tunestudio` run as a
subprocess, quickly) are the fast tier, what a plain `pytest` runs (pyproject's `testpaths`);
tests/e2e (training and serving for real), tests/browser (the web UI in Chromium) and
tests/realmodel (a real model fine-tuned and shipped) are marked by their folder (below), so a run
of every folder (`bash scripts/test.sh`) can still pick or leave out a tier with `-m`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# One torch thread per process unless told otherwise, as scripts/test.sh (and CI) run the suite: the tiny
# models gain nothing from a second thread, and on a shared 2-core machine a process's two threads fight
# the other processes for the cores (a few training steps then take ten times as long).
os.environ.setdefault("OMP_NUM_THREADS", "1")

FAST = ("unit", "cli")                    # the fast tier: pyproject's testpaths
TIERS = ("e2e", "browser", "realmodel")   # folders of tests/ whose tests carry that marker


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark each test with the tier of its folder (tests/e2e/... -> e2e), before `-m` selects; a test
    file in no tier's folder is refused (a plain `pytest` would never run it)."""
    here = Path(__file__).parent
    astray = set()
    for item in items:
        try:
            folder = item.path.relative_to(here).parts[0]
        except ValueError:   # a test outside tests/
            continue
        if folder in TIERS:
            item.add_marker(folder)
        elif folder not in FAST:
            astray.add(str(item.path.relative_to(here.parent)))
    if astray:
        raise pytest.UsageError(f"{', '.join(sorted(astray))}: in no tier; a test file belongs in tests/unit/<package>, "
                                "tests/cli, tests/e2e, tests/browser or tests/realmodel")


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """A workspace made once by `tunestudio demo` (tiny model + demo datasets)."""
    ws = tmp_path_factory.mktemp("demo-template")
    from tunestudio.core.workspace import Workspace
    from tunestudio.demo import make_demo

    make_demo(Workspace(ws))
    return ws


@pytest.fixture
def demo_ws(demo_template, tmp_path) -> Path:
    """A fresh copy of the demo workspace for one test (tests may write runs into it)."""
    ws = tmp_path / "ws"
    shutil.copytree(demo_template, ws)
    return ws


@pytest.fixture
def workspace(tmp_path) -> Path:
    """An empty workspace with the standard folders."""
    from tunestudio.core.workspace import Workspace

    Workspace(tmp_path).ensure()
    return tmp_path


# ---- a tiny Llama that trains in seconds (workspaces.make_tiny_ws, tiny_config) ------------------

@pytest.fixture
def one_thread():
    """One torch thread for the test (modules that train ask for it with `usefixtures`). On a 2-core
    machine shared with other test processes, two threads each fight over the cores and one step gets
    ~10x slower; one thread per training process is the fast setting here."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_template(demo_template, tmp_path_factory) -> Path:
    from workspaces import make_tiny_ws

    return make_tiny_ws(demo_template, tmp_path_factory.mktemp("tiny-template")).root


@pytest.fixture
def tiny_ws(tiny_template, tmp_path):
    from tunestudio.core.workspace import Workspace

    shutil.copytree(tiny_template, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


# ---- fixtures a unit test file shares with its CLI or end-to-end sibling --------------------------

@pytest.fixture
def outside(tmp_path):
    """A workspace with links to a data file and a model folder outside it (workspaces.link_outside)."""
    from workspaces import link_outside

    return link_outside(tmp_path)


@pytest.fixture
def ws_with_runs(workspace):
    """A registry with four hand-made runs (a lineage, a failed run, a ghost) and one evaluation."""
    import json

    from workspaces import add_run

    from tunestudio.core import registry
    from tunestudio.core.workspace import Workspace

    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    add_run(conn, "run-a", "first", t=0)
    add_run(conn, "run-b", "second", parent="run-a", t=10,
            config={"model": "tiny-demo", "method": "lora", "lr": 5e-4, "epochs": 2.0, "name": "second"},
            metrics={"steps": 40, "train_loss": 2.0, "eval_loss": 2.4, "best_step": 30})
    add_run(conn, "run-c", "third", parent="run-b", t=20, status="failed", metrics=None,
            error="dataset row 7: empty answer", finished_at=None)
    # A run marked running whose process is gone must show as failed, not running forever.
    add_run(conn, "run-d", "ghost", status="running", pid=2**22 + 12345, t=30, metrics=None, finished_at=None)
    conn.execute("INSERT INTO evaluations (created_at, run_id, dataset, split, n, metrics) VALUES (?,?,?,?,?,?)",
                 (1_700_000_100, "run-b", "reviews.jsonl", "test", 10, json.dumps({"exact_match": 0.9, "f1": 0.95})))
    conn.close()
    return ws


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> tuple[Path, Path]:
    """(the source model folder, its GGUF file Tiny-Test.Q8_0.gguf): written once per session."""
    from gguf_helpers import make_tiny_gguf

    return make_tiny_gguf(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def model_and_tok(demo_template):
    """The demo model (fp32, eval mode) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = demo_template / "models" / "tiny-demo"
    return (AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(),
            AutoTokenizer.from_pretrained(folder))


@pytest.fixture(scope="module")
def tok(demo_template):
    """The demo model's tokenizer as it ships (test_data_arrow.py and test_streaming.py have their own
    `tok`, with a chat template added)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_template / "models" / "tiny-demo")


@pytest.fixture(scope="module")
def ship_ws(demo_template, tmp_path_factory):
    """A demo workspace with two full runs (the demo model's own weights), shared by a module's tests:
    exports and servers are slow on a 2-core machine. Every server started from it is stopped after."""
    from eval_helpers import make_full_run

    from tunestudio.core.workspace import Workspace

    root = tmp_path_factory.mktemp("ship-jobs") / "ws"
    shutil.copytree(demo_template, root)
    make_full_run(root, "full-run")
    make_full_run(root, "other-run")
    w = Workspace(root)
    yield w
    from tunestudio.ship import background as ship_jobs

    for s in ship_jobs.list_servers(w):  # never leave a server behind
        ship_jobs.stop_server(w, s["run"], grace=5)


@pytest.fixture
def tmpfs(tmp_path):
    """A small real tmpfs (the disk that fills up); skipped where mounting is not allowed."""
    import subprocess

    mounts = []

    def make(size_mib: int) -> Path:
        mnt = tmp_path / f"tmpfs{len(mounts)}"
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mnt)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounts.append(mnt)
        return mnt

    yield make
    for mnt in reversed(mounts):
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
