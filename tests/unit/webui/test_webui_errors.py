"""Why something failed, in the UI's language: a UserError's code and fields survive the trip from
the training or export process to the web UI (the job's exit record, the run's failed event, the
export's error file) and are worded from `engine.<code>`; an error without a code is the engine's
English behind a lead in the UI's language. Checked against the locale files (tests/lang_check.py)."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
from lang_check import wrong_language

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.jobs import queue as jobs
from tunestudio.train.config_check import validate


def _wait_ended(ws: Workspace, job_id: str, timeout: float = 180) -> jobs.Job:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = next(j for j in jobs.list_jobs(ws) if j.id == job_id)
        if job.status in jobs.ENDED:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


def test_a_job_that_fails_before_its_run_exists_says_why_in_tetum(demo_ws):
    """A dataset that is not there: the training process ends before it makes a run (no events),
    so the reason comes from the job's exit record, worded in Tetum, no English left."""
    from tunestudio.config.run_config import RunConfig
    from tunestudio.webui.tabs.training.status import monitor

    ws = Workspace(demo_ws)
    cfg = RunConfig(model="tiny-demo", dataset="missing.jsonl", max_steps=1)
    job = _wait_ended(ws, jobs.submit(ws, cfg, name="broken").id)
    assert job.status == "failed" and job.error and job.error["code"] == "dataset_not_found", job
    status, _, _, _, alerts, *_ = monitor(ws, "tet", None)
    assert "falla" in status, status
    assert "dadus 'missing.jsonl' la hetan" in alerts, alerts
    assert not wrong_language(alerts + status, "tet", "en"), (alerts, wrong_language(alerts, "tet", "en"))
    status, _, _, _, alerts, *_ = monitor(ws, "en", None)
    assert "dataset 'missing.jsonl' not found" in alerts and "The job failed" in alerts, alerts
    assert not wrong_language(alerts + status, "en", "tet"), alerts


def test_a_runs_failed_event_keeps_its_code_for_the_training_and_runs_tabs(workspace):
    """A failure after the run exists (out of memory, a full disk) is in the run's failed event:
    its code and fields word it on the Training tab's monitor."""
    from tunestudio.webui.tabs.training.status import monitor

    ws = Workspace(workspace)
    run_dir = ws.runs_dir / "r1"
    run_dir.mkdir(parents=True)
    tips = [{"code": "tip_checkpointing", "message": "turn on gradient checkpointing"}]
    events = [{"type": "started", "time": time.time(), "run_id": "r1", "pid": 1},
              {"type": "failed", "time": time.time(), "error": "CUDA ran out of memory even with a micro-batch of 1",
               "code": "out_of_memory", "fields": {"error": "OutOfMemoryError: CUDA out of memory", "tips": tips}}]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    with jobs._locked(ws) as listed:
        listed.append(jobs.Job(id="j1", config_path="", status="failed", started_at=time.time() - 5,
                               finished_at=time.time(), returncode=1, run_id="r1"))
    _, _, _, _, alerts, *_ = monitor(ws, "tet", None)
    assert "GPU nia memória la to'o" in alerts and "Gradient checkpointing" not in alerts, alerts
    assert not wrong_language(alerts, "tet", "en"), alerts

    from tunestudio.runs.query import _events_summary
    assert _events_summary(run_dir)["error_event"]["code"] == "out_of_memory"


def test_the_failed_event_and_exit_record_carry_the_code(workspace, monkeypatch):
    """The engine's side of the trip: record_end writes the code and fields into the failed event;
    the CLI writes them into the job's exit record and the error file a parent asked for."""
    from tunestudio.cli import main as cli
    from tunestudio.core.errors import ERROR_FILE_ENV
    from tunestudio.train.events import EventLog
    from tunestudio.train.recovery import record_end

    run_dir = Workspace(workspace).runs_dir / "r2"
    run_dir.mkdir(parents=True)
    log = EventLog(run_dir)
    e = UserError("dataset 'x' not found", "dataset_not_found", name="x", folder=run_dir)
    record_end(log, None, "r2", "failed", str(e), e)
    log.close()
    failed = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()][-1]
    assert failed["code"] == "dataset_not_found" and failed["fields"] == {"name": "x", "folder": str(run_dir)}

    error_file = workspace / "err.json"
    monkeypatch.setenv(ERROR_FILE_ENV, str(error_file))
    monkeypatch.setenv(jobs.JOB_ENV, "j9")
    assert cli.main(["data", "check", "gone.jsonl", "--workspace", str(workspace)]) == 1
    record = json.loads(error_file.read_text())
    assert record["code"] == "dataset_not_found" and record["fields"]["name"] == "gone.jsonl", record
    exit_record = json.loads((jobs.jobs_dir(Workspace(workspace)) / "j9.exit.json").read_text())
    assert exit_record["error"] == record and exit_record["returncode"] == 1


def test_a_failed_export_process_says_why_in_tetum(workspace):
    """An export process that ends on a UserError: the ship panel words its code in Tetum."""
    from tunestudio.ship import background as ship_jobs
    from tunestudio.webui.tabs.runs.ship_panel import export_text

    ws = Workspace(workspace)
    d = ship_jobs.exports_dir(ws)
    command = [sys.executable, "-m", "tunestudio", "export", "gone", "--output", str(workspace / "out"), "--json",
               "--workspace", str(workspace)]
    pid, pid_start = ship_jobs._spawn(ws, command, d / "e1.out", d / "e1.log")
    rec = {"id": "e1", "run": "gone", "name": "gone", "format": "hf", "quant": None, "output": str(workspace / "out"),
           "command": command, "pid": pid, "pid_start": pid_start, "started_at": time.time(), "log": str(d / "e1.log")}
    (d / "e1.json").write_text(json.dumps(rec))
    deadline = time.time() + 120
    while (st := ship_jobs.export_status(ws, "e1"))["status"] == "running" and time.time() < deadline:
        time.sleep(0.3)
    assert st["status"] == "failed" and st["error_record"]["code"] == "run_not_found", st
    shown = export_text("tet", st)
    assert "treinamentu 'gone' la iha fatin servisu ne'e" in shown, shown
    assert not wrong_language(shown, "tet", "en"), shown
    assert "no run 'gone' in this workspace" in export_text("en", st)


@pytest.mark.parametrize("options, label", [({"batch_size": 0}, "Tamañu lote"), ({"lr": -1.0}, "Taxa aprendizajen"),
                                            ({"method": "nope"}, "Métodu"), ({"epochs": 0}, "Épokas")])
def test_a_bad_option_on_the_form_is_named_by_its_label_in_tetum(options, label):
    from tunestudio.config.run_config import RunConfig
    from tunestudio.webui.common.context import err, error_text, say

    with pytest.raises(UserError) as caught:
        validate(RunConfig(model="m", dataset="d.jsonl", **options))
    for shown in (error_text("tet", caught.value), say("tet", err(caught.value))):
        assert f"“{label}”" in shown and not wrong_language(shown, "tet", "en"), shown
        assert str(caught.value).split(": ", 1)[1] not in shown, shown   # not the engine's English
    assert not wrong_language(error_text("en", caught.value), "en", "tet")


EMPTIED = [("lr", "Taxa aprendizajen", "0.001"), ("epochs", "Épokas", "3"), ("batch_size", "Tamañu lote", "8"),
           ("grad_accum", "Pasu akumulasaun gradiente", "1"), ("warmup_steps", "Pasu aklimatasaun", "0"),
           ("max_steps", "Pasu másimu", "0"), ("scheduler", "Planu taxa aprendizajen", "cosine")]


@pytest.mark.parametrize("field, label, default", EMPTIED)
def test_an_emptied_box_on_the_form_is_refused_by_its_label_not_filled_in_silently(field, label, default):
    """An emptied number box (or list) is never replaced by the engine's default: Start and the
    command preview say which field is empty, by its label in the UI's language, with the default."""
    from tunestudio.webui.common.context import err, error_text, say
    from tunestudio.webui.i18n.texts import t
    from tunestudio.webui.tabs.training.form import config_from_form, form_defaults

    values = {**form_defaults(), field: None}
    with pytest.raises(UserError) as caught:
        config_from_form("tiny-demo", "demo-reviews.jsonl", values)
    assert t("tet", f"param.{field}") == label
    for shown in (error_text("tet", caught.value), say("tet", err(caught.value))):
        assert f"“{label}” mamuk" in shown and f"predefinidu mak {default}" in shown, shown
        assert not wrong_language(shown, "tet", "en"), shown
    english = say("en", err(caught.value))
    assert f"“{t('en', f'param.{field}')}” is empty" in english and f"default is {default}" in english, english
    assert not wrong_language(english, "en", "tet"), english
    # every other emptied box is named too, not only the first
    both = {**values, "lr": None, "batch_size": None}
    with pytest.raises(UserError) as caught:
        config_from_form("tiny-demo", "demo-reviews.jsonl", both)
    assert "“Learning rate” is empty" in str(caught.value) and "“Batch size” is empty" in str(caught.value)


def test_an_error_without_a_code_is_led_in_the_ui_language():
    from tunestudio.webui.common.context import error_text
    from tunestudio.webui.i18n.texts import t

    e = UserError("something the engine says in English only")
    assert error_text("en", e) == "✖ something the engine says in English only"
    assert error_text("tet", e) == "✖ " + t("tet", "engine.untranslated", detail=str(e))
    assert error_text("tet", e) != error_text("en", e)


def test_a_sweep_that_ended_on_an_error_says_why_in_tetum(workspace):
    """The sweep process writes the UserError it ends on into runner.error.json (the CLI's error
    file, $TUNESTUDIO_ERROR_FILE, set by sweep_runner.start); the panel words it, and its trial
    counts by state, in Tetum."""
    from tunestudio.core.errors import error_record
    from tunestudio.webui.tabs.runs.sweep_start import progress_text

    ws = Workspace(workspace)
    d = ws.sweep_dir("s1")
    d.mkdir(parents=True)
    # a pid no process has (above the kernel's pid_max default): the runner has ended
    (d / "runner.json").write_text(json.dumps({"sweep": "s1", "pid": 2 ** 22 + 7, "pid_start": "gone",
                                               "started_at": time.time(), "log": str(d / "runner.log"), "trials": 2}))
    e = UserError("no sweep 'x' in this workspace", "sweep_not_found", name="x")
    (d / "runner.error.json").write_text(json.dumps(error_record(e)))
    shown = progress_text(ws, "tet", "s1")
    assert "sweep 'x' la iha fatin servisu ne'e" in shown and not wrong_language(shown, "tet", "en"), shown
    assert "no sweep 'x' in this workspace" in progress_text(ws, "en", "s1")


def test_a_run_config_file_with_mistakes_is_worded_in_tetum(tmp_path):
    """What Load YAML on the Training tab reads (config/run_config.py): an unknown option, a value of the
    wrong kind, a file that is not YAML."""
    from tunestudio.config.run_config import load_config
    from tunestudio.webui.common.context import error_text

    cases = {"unknown.yaml": ("lr: 0.001\nwizardry: 3\n", "opsaun la koñesidu wizardry"),
             "kind.yaml": ("batch_size: many\n", "'many' la'ós númeru tomak"),
             "broken.yaml": ("lr: [0.1\n", "la'ós YAML válidu")}
    for name, (text, tetum) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UserError) as caught:
            load_config(tmp_path / name)
        shown = error_text("tet", caught.value)
        assert tetum in shown and not wrong_language(shown, "tet", "en"), shown


def test_a_name_the_ui_refuses_is_worded_in_tetum():
    """Save as (Datasets upload), a run's name: the name checks say what is wrong in Tetum."""
    from tunestudio.webui.common.context import error_text
    from tunestudio.webui.common.safety import safe_name, visible_name

    for call, tetum in ((lambda: safe_name("", "file name"), "naran ficheiru mamuk"),
                        (lambda: safe_name("a/b.jsonl", "file name"), "la'ós naran ficheiru simples"),
                        (lambda: visible_name("x\u202ey", "run name"), "naran treinamentu iha karakter kontrolu")):
        with pytest.raises(UserError) as caught:
            call()
        shown = error_text("tet", caught.value)
        assert tetum in shown and not wrong_language(shown, "tet", "en"), shown


def test_a_run_that_died_without_a_failed_event_is_worded_in_tetum(workspace):
    """A run whose process was killed leaves no failed event: the registry records it as failed,
    and the run's details carry that failure's code (run_crashed), worded in the UI's language."""
    from tunestudio.core import registry
    from tunestudio.runs.query import run_details
    from tunestudio.webui.tabs.runs.tab import run_failure

    ws = Workspace(workspace)
    ws.ensure()
    conn = registry.connect(ws.db_path)
    registry.insert_run(conn, id="r-dead", name="dead", status="running", pid=2**22 + 4321,  # a pid no process has
                        created_at=time.time(), started_at=time.time(), base_model="tiny-demo", method="full",
                        dataset="demo-reviews.jsonl", config={"model": "tiny-demo"})
    conn.close()
    d = run_details(ws, "r-dead")
    assert d["status"] == "failed" and d["error"].startswith(registry.CRASHED), d
    assert d["error_event"]["code"] == "run_crashed", d   # the engine gives the code, the UI only words it
    tet = run_failure("tet", d)
    assert "Kontinua A" in tet and not wrong_language(tet, "tet", "en"), tet
    assert "Resume A" in run_failure("en", d)
    d = {**d, "error": "dataset row 7: empty answer", "error_event": None}   # another registry text: English behind a Tetum lead
    assert run_failure("tet", d).startswith("Mensajen programa nian"), run_failure("tet", d)


def test_what_the_ui_refuses_itself_is_worded_in_tetum(workspace, tmp_path):
    """Errors the web UI's own actions raise (an upload, a reward file, renaming or deleting a run,
    Resume on a completed run, a job gone, chat sampling values, a rating session) are in the UI's
    language, with no English left."""
    from tunestudio.core import registry
    from tunestudio.evaluate.ratings import create_session, get_session
    from tunestudio.models.generate import Sampling
    from tunestudio.runs.manage import delete_run, rename_run
    from tunestudio.webui.common.context import error_text
    from tunestudio.webui.tabs.datasets.tab import store_upload
    from tunestudio.webui.tabs.training.rewards_panel import reward_path, test_argv

    ws = Workspace(workspace)
    ws.ensure()
    conn = registry.connect(ws.db_path)
    for rid, name, status in (("r-a", "alpha", "running"), ("r-b", "beta", "running"), ("r-c", "gamma", "completed")):
        registry.insert_run(conn, id=rid, name=name, status=status, pid=os.getpid(), created_at=time.time(),
                            base_model="tiny-demo", method="full", dataset="d.jsonl", config={"model": "tiny-demo"})
    conn.close()
    big = tmp_path / "big.jsonl"
    big.write_text("{}\n" * 1000)
    (ws.datasets_dir / "taken.jsonl").write_text("{}\n")
    attempts = [lambda: rename_run(ws, "r-a", "beta"), lambda: rename_run(ws, "r-a", "a\nb"),
                lambda: delete_run(ws, "r-a"), lambda: store_upload(ws, big, "x.xlsx"),
                lambda: store_upload(ws, big, "y.jsonl", max_bytes=10), lambda: store_upload(ws, big, "taken.jsonl"),
                lambda: reward_path(ws, "a b!"), lambda: reward_path(ws, " "),
                lambda: test_argv(ws, "exact_match", "d.jsonl", ""), lambda: test_argv(ws, "", "d.jsonl", "model:m"),
                lambda: jobs.submit_resume(ws, "r-c"), lambda: jobs.get_job(ws, "nope"), lambda: jobs.cancel(ws, "nope"),
                lambda: Sampling(temperature=-1).validate(), lambda: Sampling(top_p=2).validate(),
                lambda: Sampling(max_new_tokens=0).validate(), lambda: get_session(ws, 99),
                lambda: create_session(ws, [], "model:a", "model:b")]
    for attempt in attempts:
        with pytest.raises(UserError) as e:
            attempt()
        assert e.value.code, e.value
        tet = error_text("tet", e.value)
        assert not tet.startswith("✖ Mensajen programa nian") and not wrong_language(tet, "tet", "en"), tet
