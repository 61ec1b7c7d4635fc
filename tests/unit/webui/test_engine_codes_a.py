"""The UserErrors of training, rewards, sweeps and the state files, triggered as a user would
(a run config, a reward spec or file, a sweep.yaml, a damaged state file, a queued job): each
carries a code, so the web UI says it in Tetum with no English left (tests/lang_check.py), and in
English as the CLI does (the option named by its Training-tab label, the flag second)."""

from __future__ import annotations

import json
import time

import pytest
from lang_check import wrong_language

from tunestudio.core.errors import UserError, error_record
from tunestudio.core.workspace import Workspace
from tunestudio.train.config_check import validate
from tunestudio.webui.i18n import texts as i18n


def _worded(e: UserError) -> tuple[str, str]:
    """(Tetum, English) of `e` as the UI shows it; asserts each is worded from its code, in one language."""
    assert e.code, f"uncoded: {e}"
    tet, en = i18n.engine_error("tet", e), i18n.engine_error("en", e)
    assert not tet.startswith(i18n.t("tet", "engine.untranslated", detail="")[:20]), tet
    assert not wrong_language(tet, "tet", "en"), (tet, wrong_language(tet, "tet", "en"))
    assert not wrong_language(en, "en", "tet"), (en, wrong_language(en, "en", "tet"))
    return tet, en


def _refused(**options) -> UserError:
    from tunestudio.config.run_config import load_config

    with pytest.raises(UserError) as info:
        validate(load_config(None, {"model": "m", "dataset": "d.jsonl", **options}))
    return info.value


@pytest.mark.parametrize("options, code, tet_words", [
    ({"objective": "grpo", "rewards": "exact_match", "num_generations": 3, "batch_size": 2},
     "grpo_batch_not_multiple", "“Tamañu lote” (--batch-size) 2 x “Pasu akumulasaun gradiente” (--grad-accum) 1"),
    ({"objective": "dpo", "padding_free": "on"}, "padding_free_not_sft",
     "“Lote la ho padding” (--padding-free) on"),
    ({"num_processes": 2}, "single_launcher_processes", "“Prosesu sira” (--num-processes) 2"),
    ({"stride": 9000}, "stride_not_below_max_length", "maibé hetan 9000"),
    ({"objective": "kto", "desirable_weight": 0}, "kto_weights_not_positive", "tenke boot liu 0"),
    ({"objective": "orpo", "reference": "base"}, "reference_not_used", "la uza modelu referénsia"),
    ({"report_to": "nosuch"}, "tracker_unknown", "tracker 'nosuch' la koñesidu"),
    ({"objective": "grpo", "rewards": "exact_match:x"}, "reward_weight_bad", "tenke númeru ida"),
    ({"objective": "grpo", "rewards": "nosuch"}, "reward_unknown", "la'ós arkivu rekompensa"),
])
def test_a_refused_run_config_is_worded_in_tetum(options, code, tet_words):
    """What Start refuses (the job's exit record carries it to the Training tab): Tetum around the
    values, the fields named by their Tetum labels; English with the English labels."""
    e = _refused(**options)
    assert e.code == code, (e.code, str(e))
    tet, en = _worded(e)
    assert tet_words in tet, tet
    assert "--" in str(e) and "“" not in str(e)   # the CLI's message is unchanged: flags only


def test_the_english_ui_text_is_the_cli_message_where_no_field_is_named(workspace):
    """Without a flag to name, the English UI text and the CLI's message are the same sentence."""
    from tunestudio.core.statefiles import read_json
    from tunestudio.rewards.process_box import reward_file

    ws = Workspace(workspace)
    with pytest.raises(UserError) as info:
        reward_file(ws, "rewards/missing.py")
    tet, en = _worded(info.value)
    assert en == str(info.value) and "arkivu rekompensa 'rewards/missing.py' la hetan" in tet

    damaged = workspace / "split.json"
    damaged.write_text("[1, 2]")
    with pytest.raises(UserError) as info:
        read_json(damaged, "the run's split file")
    tet, en = _worded(info.value)
    assert en == str(info.value) == f"the run's split file {damaged} is damaged (expected a JSON object, got list)"
    assert tet.startswith("ficheiru divizaun (split) treinamentu nian") and "aat ona" in tet, tet
    damaged.write_text("{not json")
    with pytest.raises(UserError) as info:
        read_json(damaged)
    tet, en = _worded(info.value)   # the library's words quoted, as every {detail} in the UI
    assert en == f"file {damaged} is damaged (not JSON: “Expecting property name enclosed in double quotes: " \
                 "line 1 column 2 (char 1)”)", en
    assert tet.startswith(f"ficheiru {damaged} aat ona (la'ós JSON: “Expecting property"), tet


def test_a_failing_reward_file_is_worded_with_its_own_error_kept(workspace):
    """A reward file that raises on a row, or returns no number: the worker's error comes back
    coded; the user's own exception text stays as it is inside the Tetum sentence."""
    from tunestudio.rewards import RewardSet

    ws = Workspace(workspace)
    (workspace / "rewards").mkdir()
    (workspace / "rewards" / "div.py").write_text("def reward(prompt, completion, **row):\n    return 1 / 0\n")
    (workspace / "rewards" / "text.py").write_text("def reward(prompt, completion, **row):\n    return 'yes'\n")
    with RewardSet(ws, "rewards/div.py", timeout=60) as rewards:
        with pytest.raises(UserError) as info:
            rewards.score_all(["p"], ["c"], [{"_where": "prompts.jsonl:3"}])
    tet, en = _worded(info.value)
    assert en == str(info.value) == "rewards/div.py:2: reward() raised ZeroDivisionError: division by zero " \
                                    "(dataset row prompts.jsonl:3)"
    assert tet == "rewards/div.py:2: reward() hamosu erru ZeroDivisionError: division by zero " \
                  "(liña dadus prompts.jsonl:3)"
    with RewardSet(ws, "rewards/text.py", timeout=60) as rewards:
        with pytest.raises(UserError) as info:
            rewards.score_all(["p"], ["c"], [{}])
    tet, en = _worded(info.value)
    assert en == str(info.value) and "tenke fó fali númeru finitu" in tet, tet


def test_a_bad_sweep_file_names_its_line_in_tetum(workspace):
    """sweep.yaml mistakes (the Sweeps tab's error file): file and line kept, the problem worded;
    a value the run config refuses is worded by its own code inside."""
    from tunestudio.sweeps.spec import load_spec

    path = workspace / "sweep.yaml"
    path.write_text("base: {model: m, dataset: d.jsonl}\nspace:\n  lr: {log_uniform: [1e-3, 1e-5]}\n")
    with pytest.raises(UserError) as info:
        load_spec(path)
    tet, en = _worded(info.value)
    assert en == str(info.value) and en.startswith(f"{path}, line 3: 'lr': log_uniform needs [low, high]"), en
    assert tet.startswith(f"{path}, liña 3: 'lr': log_uniform presiza [low, high]"), tet
    # as the Sweeps tab reads it back from the sweep process's error file: the same words
    record = json.loads(json.dumps(error_record(info.value)))
    assert i18n.engine_error("tet", record) == tet and i18n.engine_error("en", record) == en

    path.write_text("base: {model: m, dataset: d.jsonl, batch_size: many}\nspace: {lr: [1e-4]}\n")
    with pytest.raises(UserError) as info:
        load_spec(path)
    tet, _ = _worded(info.value)
    assert "“Tamañu lote” (--batch-size): 'many' la'ós númeru tomak ida ne'ebé válidu" in tet, tet


def test_a_queued_job_refused_by_the_grpo_checks_says_why_in_tetum(demo_ws):
    """Through the job queue, as Start on the Training tab does: the training process refuses the
    config, and its exit record carries the code to the Training tab's monitor."""
    from tunestudio.config.run_config import RunConfig
    from tunestudio.jobs import queue as jobs
    from tunestudio.webui.tabs.training.status import monitor

    ws = Workspace(demo_ws)
    cfg = RunConfig(model="tiny-demo", dataset="demo-rewards.jsonl", objective="grpo", rewards="exact_match",
                    num_generations=3, batch_size=2, max_steps=1)
    job_id = jobs.submit(ws, cfg, name="grpo-bad").id
    deadline = time.time() + 180
    while (job := next(j for j in jobs.list_jobs(ws) if j.id == job_id)).status not in jobs.ENDED:
        assert time.time() < deadline, "the job did not end"
        time.sleep(0.5)
    assert job.status == "failed" and job.error["code"] == "grpo_batch_not_multiple", job
    _, _, _, _, alerts, *_ = monitor(ws, "tet", None)
    assert "tenke múltiplu husi “Resposta kada pergunta (GRPO)” (--num-generations) 3" in alerts, alerts
    assert not wrong_language(alerts, "tet", "en"), wrong_language(alerts, "tet", "en")


def test_a_run_that_cannot_fit_says_so_in_tetum_with_its_estimate_and_tips(demo_ws, monkeypatch):
    """The check before a run loads its model ('not enough memory ... To fit: ...'): the estimate
    and each tip are worded in the UI's language; the CLI's message is the engine's line."""
    from tunestudio.config.run_config import RunConfig
    from tunestudio.models import memory
    from tunestudio.train import run
    from tunestudio.train.model_source import Base

    ws = Workspace(demo_ws)
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 10)   # 1 KiB: nothing fits
    cfg = RunConfig(model="tiny-demo", dataset="demo-chat.jsonl", method="full")
    path = str(ws.model_path_or_id("tiny-demo"))
    with pytest.raises(UserError) as info:
        run._memory_precheck(cfg, Base(path=path, revision="", tokenizer_path=path))
    e = info.value
    assert str(e).startswith("not enough memory: this run needs about ") and " is available on " in str(e)
    tet, en = _worded(e)
    assert tet.startswith("memória la to'o: treinamentu ne'e presiza maizumenus ") and "(pezu " in tet, tet
    assert "treina adaptadór ida: “Métodu” (--method) lora" in tet, tet
    assert en.startswith("not enough memory: this run needs about ") and "“Method” (--method) lora" in en, en
