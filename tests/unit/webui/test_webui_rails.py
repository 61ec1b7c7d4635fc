"""The web UI's safety rails and its contract with the engine, without a browser: loopback by default,
uploads cannot escape training/datasets, presets, checks before a job is queued, and the memory
estimate's words (the `webui` command's refusals: test_webui_cli.py; a UI run's config:
test_webui_same_config_e2e.py)."""

from __future__ import annotations

import pytest

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.train.config_check import validate


def test_loopback_rules():
    from tunestudio.cli.webui import is_loopback, parse_auth

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    assert parse_auth("alice:s3:cret") == ("alice", "s3:cret")


@pytest.mark.parametrize("name", ["../../x.jsonl", "../x.jsonl", "/tmp/x.jsonl", "sub/x.jsonl", ".hidden.jsonl"])
def test_upload_cannot_escape_the_datasets_folder(workspace, tmp_path, name):
    from tunestudio.webui.tabs.datasets.tab import store_upload

    ws = Workspace(workspace)
    src = tmp_path / "upload.jsonl"
    src.write_text('{"text": "hello"}\n')
    with pytest.raises(UserError):
        store_upload(ws, src, name)
    assert not (workspace / "x.jsonl").exists() and not (workspace.parent / "x.jsonl").exists()
    assert not (workspace / "training" / "x.jsonl").exists()


def test_upload_limits_and_no_overwrite(workspace, tmp_path):
    from tunestudio.webui.tabs.datasets.tab import store_upload

    ws = Workspace(workspace)
    src = tmp_path / "data.jsonl"
    src.write_text('{"text": "hello"}\n' * 100)
    with pytest.raises(UserError, match="over the upload limit"):
        store_upload(ws, src, "big.jsonl", max_bytes=100)
    with pytest.raises(UserError, match="unsupported file type"):
        store_upload(ws, src, "data.exe")
    assert store_upload(ws, src).read_text() == src.read_text()
    with pytest.raises(UserError, match="already exists"):
        store_upload(ws, src, "data.jsonl")


def test_presets_follow_the_model_and_the_method(demo_ws):
    """The Training tab starts the random demo model from the preset that learns on it (full
    fine-tuning at 1e-3), a pretrained model from its method's learning rate (full fine-tuning an
    order of magnitude under LoRA), follows the method until the user types a rate, and goes back
    to the engine's defaults for another model unless the user changed a value."""
    import shutil

    from tunestudio.config import run_config
    from tunestudio.config.presets import RANDOM_PRESET
    from tunestudio.core.workspace import Workspace
    from tunestudio.webui.tabs.chat import pick_source
    from tunestudio.webui.tabs.training.tab import (
        apply_preset,
        form_defaults,
        lr_for_method,
        model_note_text,
        preset_for,
    )

    ws = Workspace(demo_ws)
    shutil.copytree(ws.models_dir / "tiny-demo", ws.models_dir / "pretrained")   # any other name: pretrained
    assert set(RANDOM_PRESET) <= set(form_defaults())
    validate(run_config.from_dict({"model": "tiny-demo", "dataset": "x.jsonl", **RANDOM_PRESET}))
    random = preset_for(ws, "tiny-demo", "lora")
    assert {k: random[k] for k in RANDOM_PRESET} == RANDOM_PRESET and random["reason"].code == "preset_random"
    assert preset_for(ws, "pretrained", "lora")["lr"] == 2e-4
    assert preset_for(ws, "pretrained", "full")["lr"] == 2e-5
    assert preset_for(ws, "pretrained", "full")["reason"].code == "preset_pretrained_full"
    names = list(RANDOM_PRESET)
    assert apply_preset(ws, "tiny-demo", {}, names) == [RANDOM_PRESET[n] for n in names]
    defaults = form_defaults()
    back = apply_preset(ws, "pretrained", {**RANDOM_PRESET, "method": "full", "epochs": 5.0}, names)
    assert back[names.index("method")] == defaults["method"]
    assert back[names.index("lr")] == 2e-4            # the preset for the method the form now holds (lora)
    assert back[names.index("epochs")] != defaults["epochs"]  # the user's own value is a skip, not a reset
    # picking another method moves a preset rate, never a typed one
    assert lr_for_method(ws, "pretrained", "full", 2e-4) == 2e-5
    assert lr_for_method(ws, "pretrained", "lora", 2e-5) == 2e-4
    assert lr_for_method(ws, "pretrained", "full", 7e-5) != 2e-5
    assert "1e-3" in model_note_text(ws, "en", "tiny-demo") and "2e-05" in model_note_text(ws, "en", "pretrained", "full")
    # the usual guide's values never fail silently: the form says so before Start
    guide = {"method": "lora", "lr": 1e-5, "epochs": 1, "batch_size": 8, "grad_accum": 1, "max_steps": 0,
             "val_split": 0.1, "test_split": 0.1, "seed": 42}
    note = model_note_text(ws, "en", "pretrained", "lora", "demo-reviews.jsonl", guide)
    assert "unlikely to teach" in note and "2e-05" not in note
    assert "unlikely" not in model_note_text(ws, "en", "pretrained", "lora", "demo-reviews.jsonl", {**guide, "lr": 2e-4})
    assert "barely learns" in model_note_text(ws, "en", "tiny-demo", "lora", "demo-reviews.jsonl", {**guide, "lr": 5e-5})
    assert "barely learns" not in model_note_text(ws, "en", "tiny-demo", "full", "demo-reviews.jsonl", guide)

    opts = [("r2", "run:2"), ("r1", "run:1"), ("m", "model:tiny-demo")]
    assert pick_source(opts, "model:tiny-demo", picked=False)["value"] == "run:2"
    assert pick_source(opts, "run:1", picked=True)["value"] == "run:1"
    assert pick_source(opts[2:], None, picked=False)["value"] == "model:tiny-demo"


def test_start_checks_the_data_before_a_job_is_queued(workspace):
    """A broken row is shown in the Training tab with its file:line before any job exists."""
    import json

    from tunestudio.config.run_config import RunConfig
    from tunestudio.webui.common.context import msg, problems, say
    from tunestudio.webui.tabs.training.tab import precheck

    ws = Workspace(workspace)
    rows = [json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(20)]
    rows[6] = '{"instruction": "q6", "output": '
    (ws.datasets_dir / "broken.jsonl").write_text("\n".join(rows) + "\n")
    (ws.datasets_dir / "fine.jsonl").write_text("\n".join(r for i, r in enumerate(rows) if i != 6) + "\n")
    n, listed = precheck(ws, RunConfig(model="m", dataset="broken.jsonl"))
    assert n == 1 and (listed[0]["file"], listed[0]["line"], listed[0]["code"]) == ("broken.jsonl", 7, "invalid_json")
    assert precheck(ws, RunConfig(model="m", dataset="fine.jsonl")) is None
    shown = say("en", msg("training.precheck_failed", n=n, rows=problems(listed, n)))
    assert "broken.jsonl:7: invalid JSON" in shown and "Clean on the Datasets tab" in shown
    # In Tetum the row's problem is in Tetum too; only the JSON parser's own words stay, quoted.
    shown = say("tet", msg("training.precheck_failed", n=n, rows=problems(listed, n)))
    assert "broken.jsonl:7: JSON la válidu iha koluna" in shown and "invalid JSON" not in shown


def test_memory_estimate_refuses_a_batch_size_below_one(workspace):
    """0 was estimated as if it were 1, while -5 raised: both are now the same clear warning."""
    from tunestudio.webui.tabs.training.tab import memory_text

    ws = Workspace(workspace)
    assert memory_text(ws, "en", "tiny-demo", "lora", 0, 512, "auto", False, 16) == \
        "⚠ Batch size must be at least 1 (it is 0)"
    assert memory_text(ws, "en", "tiny-demo", "lora", -5, 512, "auto", False, 16).endswith("(it is -5)")
    assert memory_text(ws, "tet", "tiny-demo", "lora", 0, 512, "auto", False, 16).endswith("(agora 0)")


def test_memory_warning_is_in_the_ui_language(demo_ws, monkeypatch):
    """The engine's "not enough memory" verdict in the UI's words, its tips naming form fields."""
    from tunestudio.models import memory
    from tunestudio.webui.tabs.training.tab import memory_text

    monkeypatch.setattr(memory, "available_memory", lambda: 1024)   # 1 KiB free: nothing fits
    ws = Workspace(demo_ws)
    en = memory_text(ws, "en", "tiny-demo", "full", 4, 512, "auto", False, 16)
    tet = memory_text(ws, "tet", "tiny-demo", "full", 4, 512, "auto", False, 16)
    assert "⚠ not enough memory: this run needs about" in en and "“Max length (tokens)” (--max-length)" in en
    assert "⚠ memória la to'o: treinamentu ne'e presiza" in tet and "not enough memory" not in tet
    assert "“Naruk másimu (token)” (--max-length)" in tet


def test_benchmark_memory_is_shown_in_mib_not_bytes():
    from tunestudio.webui.tabs.evaluate.tables import _cell

    assert _cell("weights_memory", 3 * 2**20) == "3.0 MiB"
    assert _cell("train_memory_lora", 5 * 2**30) == "5.0 GiB"
