"""`tunestudio models import FILE.gguf`, the Model tab's Import, and `--model FILE.gguf`.

The GGUF file is written offline with the gguf package's own writer (gguf_helpers.make_tiny_gguf,
conftest's tiny_gguf): a tiny random Llama
(grouped-query attention, untied output layer) with the demo's byte-level BPE tokenizer, its tensors
named and its q/k weights permuted as llama.cpp's converter does. Importing it must give back the same
model: the same logits and greedy tokens in plain transformers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tunestudio.cli import main as cli
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace


def _models_state(ws: Path) -> dict:
    """Every entry under models/ (hidden ones too) with its size and mtime: what must not change."""
    return {str(p.relative_to(ws)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted((ws / "models").rglob("*"))}


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    """The one error line a refusal prints (transformers' progress bars aside), no traceback."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_default_name_and_precision_come_from_the_file(workspace, tiny_gguf, capsys):
    """No --name: the file name without its quantisation suffix; no --dtype: bf16 weights. A file
    under models/ is found by its name alone, and `models list` says which model it became."""
    import shutil

    from tunestudio.core.workspace import gguf_model_name

    assert gguf_model_name(Path("SmolLM2-135M-Instruct.Q4_1.gguf")) == "smollm2-135m-instruct"
    assert gguf_model_name(Path("Llama-3.2-1B-Instruct-Q4_K_M.gguf")) == "llama-3.2-1b-instruct"
    shutil.copy(tiny_gguf[1], workspace / "models" / tiny_gguf[1].name)
    code, out, err = _cli(capsys, "models", "import", tiny_gguf[1].name, "--workspace", workspace)
    assert code == 0, err
    assert "importing Tiny-Test.Q8_0.gguf" in out and "models/tiny-test" in out
    config = json.loads((workspace / "models" / "tiny-test" / "config.json").read_text())
    assert config["dtype"] == "bfloat16"
    code, out, _ = _cli(capsys, "models", "list", "--workspace", workspace)
    assert "from Tiny-Test.Q8_0.gguf" in out and "imported as tiny-test" in out


def _not_gguf(root: Path, _src: Path) -> Path:
    path = root / "notes.gguf"
    path.write_text("these are notes, not a model\n", encoding="utf-8")
    return path


def _truncated(root: Path, src: Path) -> Path:
    path = root / "cut.gguf"
    data = src.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _rwkv(root: Path, _src: Path) -> Path:
    import gguf
    import numpy as np

    path = root / "rwkv.gguf"
    w = gguf.GGUFWriter(str(path), "rwkv7")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("make, says", [(_not_gguf, "not a GGUF file"), (_truncated, "truncated"),
                                         (_rwkv, "architecture 'rwkv7'")], ids=["not-gguf", "truncated", "rwkv7"])
def test_a_file_that_cannot_be_imported_is_refused_and_models_is_unchanged(workspace, tiny_gguf, capsys, tmp_path,
                                                                          make, says):
    (workspace / "models" / "keep").mkdir()
    (workspace / "models" / "keep" / "config.json").write_text("{}", encoding="utf-8")
    before = _models_state(workspace)
    bad = make(tmp_path, tiny_gguf[1])
    code, _, err = _cli(capsys, "models", "import", bad, "--workspace", workspace)
    assert code == 1
    line = _error_line(err)
    assert bad.name in line and says in line, line
    assert _models_state(workspace) == before


def test_an_existing_name_is_refused_without_touching_it(workspace, tiny_gguf, capsys):
    taken = workspace / "models" / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine\n", encoding="utf-8")
    before = _models_state(workspace)
    code, _, err = _cli(capsys, "models", "import", tiny_gguf[1], "--name", "taken", "--workspace", workspace)
    assert code == 1
    assert "taken already exists" in _error_line(err)
    assert _models_state(workspace) == before and (taken / "notes.txt").read_text() == "mine\n"
    code, _, err = _cli(capsys, "models", "import", tiny_gguf[1], "--name", "../out", "--workspace", workspace)
    assert code == 1 and "letters, digits" in _error_line(err)
    code, _, err = _cli(capsys, "models", "import", tiny_gguf[1], "--dtype", "fp8", "--workspace", workspace)
    assert code == 1 and "--dtype must be one of bf16, fp32" in _error_line(err)
    assert _models_state(workspace) == before


def test_an_interrupted_import_leaves_nothing_behind(workspace, tiny_gguf, monkeypatch):
    """Ctrl-C (or the UI's process ending) in the middle of writing: no folder, no temporary one."""
    from tunestudio.models import gguf_import

    def half_written(path, out, dtype):
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}", encoding="utf-8")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_import, "_convert", half_written)
    with pytest.raises(KeyboardInterrupt):
        gguf_import.import_gguf(Workspace(workspace), tiny_gguf[1])
    assert list((workspace / "models").iterdir()) == []


def test_model_flag_given_a_gguf_file_says_how_to_import_it(workspace, tiny_gguf, capsys):
    """--model x.gguf (train, chat...), or a folder holding only a GGUF: one line with the command
    that imports it and the name to use after; once imported, the name to use; never a hub lookup."""
    import shutil

    ws = Workspace(workspace)
    shutil.copy(tiny_gguf[1], workspace / "models" / "x.gguf")
    (workspace / "models" / "dl").mkdir()
    shutil.copy(tiny_gguf[1], workspace / "models" / "dl" / "dl.Q4_0.gguf")
    (workspace / "training" / "datasets" / "d.jsonl").write_text('{"prompt": "q", "completion": "a"}\n' * 8)

    code, _, err = _cli(capsys, "train", "--model", "x.gguf", "--dataset", "d.jsonl", "--workspace", workspace)
    assert code == 1
    assert _error_line(err) == ("error: models/x.gguf is a GGUF file: import it first with `tunestudio models import "
                                "models/x.gguf` (or the Model tab's Import), then use --model x")
    assert not (workspace / "training" / "runs").exists() or not any((workspace / "training" / "runs").iterdir())
    code, _, err = _cli(capsys, "chat", "--model", "models/x.gguf", "--prompt", "hi", "--workspace", workspace)
    assert code == 1 and "tunestudio models import models/x.gguf" in _error_line(err)

    # the folder's own name is taken (by the folder): the command names another
    with pytest.raises(UserError) as e:
        ws.model_path_or_id("dl")
    assert e.value.code == "model_folder_gguf"
    assert "`tunestudio models import models/dl/dl.Q4_0.gguf --name dl-hf`" in str(e.value)
    assert "then use --model dl-hf" in str(e.value)
    with pytest.raises(UserError) as e:
        ws.model_path_or_id("gone.gguf")
    assert e.value.code == "model_gguf_missing"

    assert cli.main(["models", "import", "x.gguf", "--workspace", str(workspace)]) == 0
    capsys.readouterr()
    with pytest.raises(UserError) as e:
        ws.model_path_or_id("x.gguf")
    assert (e.value.code, str(e.value)) == ("model_gguf_imported", "models/x.gguf is a GGUF file, already imported "
                                                                  "as models/x: use --model x")
    assert ws.model_path_or_id("x") == str((workspace / "models" / "x").resolve())


def test_model_tab_imports_a_file_from_models_and_refreshes_every_model_list(workspace, tiny_gguf):
    """The Model tab's Import: the button goes off and says what runs at once, the import picks the
    new model, the button comes back, and every other tab's model list holds the new model; a
    refusal is said in the UI language; a second import while one runs is refused."""
    import shutil

    from tunestudio.webui.app import build_app
    from tunestudio.webui.i18n.texts import t
    from tunestudio.webui.tabs import model as tab_model

    ws = Workspace(workspace)
    shutil.copy(tiny_gguf[1], workspace / "models" / tiny_gguf[1].name)
    demo = build_app(ws)
    by_id = {getattr(c, "elem_id", None): c for c in demo.blocks.values()}
    fns = list(demo.fns.values())

    def after(d):
        return next(x for x in fns if x.trigger_after == d._id)

    start = next(d for d in fns if (by_id["model-import-button"]._id, "click") in [tuple(x) for x in d.targets])
    shown, _, button = start.fn("tet", tiny_gguf[1].name, None, "")
    assert shown == t("tet", "model.importing", file=tiny_gguf[1].name) and button["interactive"] is False
    work = after(start)
    out = dict(zip([o.elem_id for o in work.outputs], work.fn("tet", tiny_gguf[1].name, None, " ui-model ")))
    assert out["model-import-message"].startswith("✔") and "models/**ui-model**" in out["model-import-message"]
    assert out["model-select"]["value"] == "ui-model" and "ui-model" in out["model-select"]["choices"]
    assert (workspace / "models" / "ui-model" / "config.json").is_file()
    ended = after(work)
    assert ended.fn()["interactive"] is True
    lists = after(ended)
    updates = dict(zip([o.elem_id for o in lists.outputs], lists.fn("en")))
    assert {"chat-source", "bench-models", "rewards-model"} <= set(updates), sorted(updates)
    for elem_id, update in updates.items():
        values = [c[1] if isinstance(c, (list, tuple)) else c for c in update["choices"]]
        assert "ui-model" in values or "model:ui-model" in values, (elem_id, values)

    again = work.fn("tet", tiny_gguf[1].name, None, "ui-model")[0]
    assert again == "✖ " + t("tet", "engine.model_exists", folder=str(ws.models_dir / "ui-model"), name="ui-model")
    assert work.fn("en", None, None, "")[0] == t("en", "model.import_pick_first")
    with tab_model._IMPORTING:   # another browser's import is running
        spec, done = tab_model.import_work(ws, tiny_gguf[1].name, None, "other")
    assert done is None and spec == [("t", "model.import_busy", {})]
    assert not (workspace / "models" / "other").exists()
    assert sorted(os.listdir(workspace / "models")) == [tiny_gguf[1].name, "ui-model"]
