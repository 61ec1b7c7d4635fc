"""Errors from evaluate/, serve.py, data/, runs/ and the web UI's own checks carry a code: raised
the way users reach them, each is worded in Tetum with no English left (tests/lang_check.py), and
in English is the message the command line prints (where it names no Training-tab field)."""

from __future__ import annotations

import json
import time

import pytest
from lang_check import wrong_language

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.webui.i18n.texts import engine_error


def _in_tetum(e: UserError, english_too: bool = True) -> str:
    """`e` worded in Tetum (asserted free of English), and in English as the CLI says it."""
    assert e.code, f"no code: {e}"
    tet = engine_error("tet", e)
    assert not wrong_language(tet, "tet", "en"), (tet, wrong_language(tet, "tet", "en"))
    if english_too:
        assert engine_error("en", e) == str(e)
    return tet


def _write(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def test_data_errors_of_split_sets_and_fractions_are_in_tetum(workspace):
    from tunestudio.data.split import load_splits, resolve_dataset

    ws = Workspace(workspace)
    row = {"instruction": "q", "output": "a"}
    _write(ws.datasets_dir / "qa.val.jsonl", [row])
    _write(ws.datasets_dir / "qa.test.jsonl", [row])
    with pytest.raises(UserError, match="no qa.train") as e:
        resolve_dataset(ws, "qa")
    assert "qa.train.*" in _in_tetum(e.value)
    _write(ws.datasets_dir / "dup.jsonl", [row])
    _write(ws.datasets_dir / "dup.csv", ["instruction,output", "q,a"])
    with pytest.raises(UserError, match="is ambiguous") as e:
        resolve_dataset(ws, "dup")
    assert "dup.jsonl" in _in_tetum(e.value)
    _write(ws.datasets_dir / "two.jsonl", [row, {"instruction": "r", "output": "b"}])
    with pytest.raises(UserError, match="too few to keep") as e:
        load_splits(ws, "two.jsonl", 0.3, 0.3)
    assert "“Parte validasaun”/“Parte teste” (--val-split/--test-split)" in _in_tetum(e.value, english_too=False)
    with pytest.raises(UserError, match="--test-split must be at least 0") as e:
        load_splits(ws, "two.jsonl", 0.1, 1.5)
    tet = _in_tetum(e.value, english_too=False)   # the field is named by its Training-tab label
    assert "“Parte teste” (--test-split)" in tet, tet


def test_a_dataset_with_bad_rows_lists_them_in_tetum(workspace):
    """The row problems come as coded file:line parts: each worded in Tetum, not the CLI's English."""
    from tunestudio.data.split import load_splits

    ws = Workspace(workspace)
    _write(ws.datasets_dir / "bad.jsonl", [{"messages": [{"role": "wizard", "content": "hi"},
                                                         {"role": "assistant", "content": "yo"}]},
                                           {"messages": "nope"}, '{"messages": [', {"instruction": "q"}])
    with pytest.raises(UserError, match=r"the dataset has \d error\(s\)") as e:
        load_splits(ws, "bad.jsonl")
    tet = _in_tetum(e.value, english_too=False)   # the UI names its buttons, not the CLI's commands
    assert "bad.jsonl:1:" in tet and "papél" in tet and "Verifika iha tab Dataset sira" in tet, tet
    assert "(Check on the Datasets tab lists them" in engine_error("en", e.value)


def test_option_values_and_mappings_are_in_tetum():
    from tunestudio.data.formats.load import normalize_format, parse_mapping

    with pytest.raises(UserError, match="--map 'nonsense'") as e:
        parse_mapping("nonsense")
    assert "“Mapa koluna” (--map)" in _in_tetum(e.value, english_too=False)
    assert engine_error("en", e.value) == str(e.value).replace("--map", "“Column mapping” (--map)")
    with pytest.raises(UserError, match="unknown field 'answer'") as e:
        parse_mapping("answer=x")
    _in_tetum(e.value, english_too=False)
    with pytest.raises(UserError, match="--format 'xml' is not known") as e:
        normalize_format("xml")
    assert "“Formatu dadus” (--format)" in _in_tetum(e.value, english_too=False)


def test_evaluate_metric_files_and_predictions_are_in_tetum(workspace, tmp_path):
    from tunestudio.evaluate import metrics as M
    from tunestudio.evaluate.predictions import score_predictions

    broken = tmp_path / "broken.py"
    broken.write_text("import nothing_such_module\n")
    with pytest.raises(UserError, match="failed to load: ModuleNotFoundError") as e:
        M.CustomMetric(broken)
    assert "ModuleNotFoundError" in _in_tetum(e.value)   # the library's words stay, around them Tetum
    noscore = tmp_path / "noscore.py"
    noscore.write_text("def other():\n    return 1\n")
    with pytest.raises(UserError, match="has no function score") as e:
        M.CustomMetric(noscore)
    _in_tetum(e.value)
    nan = tmp_path / "nan.py"
    nan.write_text("def score(prediction, reference, example):\n    return float('nan')\n")
    with pytest.raises(UserError, match="returned NaN on example row 3") as e:
        M.CustomMetric(nan)("a", "b", {}, where="row 3")
    _in_tetum(e.value)
    with pytest.raises(UserError, match="unknown metric blue") as e:
        M.parse_names("blue,f1")
    _in_tetum(e.value)

    ws = Workspace(workspace)
    (ws.root / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="empty.jsonl: no rows") as e:
        score_predictions(ws, "empty.jsonl", save=False)
    _in_tetum(e.value)
    _write(ws.root / "p.jsonl", [{"prediction": "a", "reference": "a"}])
    with pytest.raises(UserError, match="need\\(s\\) the model's probabilities") as e:
        score_predictions(ws, "p.jsonl", metrics="perplexity", save=False)
    _in_tetum(e.value)
    with pytest.raises(UserError, match="predictions file 'gone.jsonl' not found") as e:
        score_predictions(ws, "gone.jsonl", save=False)
    _in_tetum(e.value)


def test_endpoint_serve_and_registry_errors_are_in_tetum(workspace):
    from tunestudio.models.endpoint import base_url
    from tunestudio.runs.reindex import row_from_folder
    from tunestudio.ship import serve

    with pytest.raises(UserError, match="must start with http") as e:
        base_url("ftp://example.org")
    _in_tetum(e.value)
    with pytest.raises(UserError, match="--host 0.0.0.0 makes the server reachable") as e:
        serve.check_bind("0.0.0.0", 8000, None)
    _in_tetum(e.value)
    with pytest.raises(UserError, match="--port must be between") as e:
        serve.check_bind("127.0.0.1", 70000, None)
    _in_tetum(e.value)
    folder = Workspace(workspace).runs_dir / "r1"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("- a\n- b\n")
    with pytest.raises(UserError, match="is not a mapping of option: value") as e:
        row_from_folder(folder)
    _in_tetum(e.value)


def test_a_row_the_chat_template_refuses_is_named_in_tetum(demo_ws):
    """Training's encoding stops on rows the chat template raises on: the rows come worded in
    Tetum under their file:line, the flag that skips them by its Training-tab label."""
    from tunestudio.data.encoding.encode import encode
    from tunestudio.data.formats.load import load_file
    from tunestudio.data.quality.stats import load_tokenizer

    ws = Workspace(demo_ws)
    tok = load_tokenizer(ws, "tiny-demo")
    tok.chat_template = ("{% for m in messages %}{% if 'BAD' in m['content'] %}{{ raise_exception('no BAD here') }}"
                         "{% endif %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}assistant: {% endif %}")
    path = ws.datasets_dir / "refused.jsonl"
    _write(path, [{"instruction": "fine", "output": "ok"}, {"instruction": "BAD one", "output": "x"}])
    records = load_file(path).records
    with pytest.raises(UserError, match="refused 1 row") as e:
        encode(records, tok, 64)
    tet = _in_tetum(e.value, english_too=False)
    assert "refused.jsonl:2" in tet and "no BAD here" in tet and "(--skip-bad-rows)" in tet, tet


def test_the_reward_test_error_comes_back_coded_from_its_process(demo_ws):
    """The web UI's reward test runs the CLI in its own process: the error it ends on comes back
    through the error file with its code (a missing dataset), worded in Tetum."""
    from tunestudio.webui.tabs.training import rewards_panel as rp

    ws = Workspace(demo_ws)
    started = time.time()
    with pytest.raises(UserError, match="dataset 'nothing.jsonl' not found") as e:
        rp.run_test(ws, "exact_match", "nothing.jsonl", "model:tiny-demo")
    assert e.value.code == "reward_test_error" and time.time() - started < 120
    tet = _in_tetum(e.value, english_too=False)   # the UI's own wording of dataset_not_found
    assert "dadus 'nothing.jsonl' la hetan" in tet, tet


def test_a_training_job_that_fails_on_its_data_says_why_in_tetum(demo_ws):
    """The Training tab's path: a job whose two rows cannot be split three ways ends before its run
    starts; the reason comes back through the job's exit record, worded in Tetum."""
    from tunestudio.config.run_config import RunConfig
    from tunestudio.jobs import queue as jobs
    from tunestudio.webui.tabs.training.status import monitor

    ws = Workspace(demo_ws)
    _write(ws.datasets_dir / "two.jsonl", [{"instruction": "q", "output": "a"}, {"instruction": "r", "output": "b"}])
    cfg = RunConfig(model="tiny-demo", dataset="two.jsonl", val_split=0.3, test_split=0.3, max_steps=1)
    job_id = jobs.submit(ws, cfg, name="too-few").id
    deadline = time.time() + 180
    while (job := next(j for j in jobs.list_jobs(ws) if j.id == job_id)).status not in jobs.ENDED:
        assert time.time() < deadline, f"job {job_id} did not end"
        time.sleep(0.5)
    assert job.status == "failed" and job.error["code"] == "too_few_rows", job
    status, _, _, _, alerts, *_ = monitor(ws, "tet", None)
    assert "iha de'it liña 2 ne'ebé uza bele" in alerts, alerts
    assert not wrong_language(alerts + status, "tet", "en"), wrong_language(alerts + status, "tet", "en")
