"""The Rewards panel (Training tab, shown for --objective grpo): open, edit and save a reward file
under the workspace's rewards/, and try rewards on 8 sampled completions before a long GRPO run.

The test is `tunestudio reward test --json` run as its own process (the CLI's code path, not a copy
of it): loading a model and the user's reward code never happen inside the UI server, and an error
comes back as the CLI's one-line message, naming the reward file and line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from tunestudio.core.errors import ERROR_FILE_ENV, UserError
from tunestudio.core.statefiles import read_json_or_none
from tunestudio.rewards.process_box import inside_workspace, kill_session
from tunestudio.webui.common.context import Context, err, msg, run_choices, say, shown
from tunestudio.webui.i18n.texts import DEFAULT, t

FOLDER = "rewards"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\.py$")
TEST_TIMEOUT_S = 600            # a tiny model samples 8 answers in seconds; a 7B on CPU takes minutes
TEMPLATE = '''"""A reward for GRPO: a float per completion, higher is better."""


def reward(prompt, completion, **row) -> float:
    # row holds the dataset row's other columns: row.get("reference") is the expected answer
    reference = str(row.get("reference") or "").strip()
    return 1.0 if reference and completion.strip() == reference else 0.0
'''


# ---- files ---------------------------------------------------------------------------------------

def reward_files(ws) -> list[str]:
    """The reward files the panel offers: 'rewards/NAME.py' for each .py file directly in the
    workspace's rewards/ folder that stays inside the workspace (links out are left out)."""
    folder = ws.rewards_dir
    if not folder.is_dir():
        return []
    root = ws.root.resolve()
    out = []
    for p in sorted(folder.glob("*.py")):
        if p.resolve().is_relative_to(root) and p.is_file():
            out.append(f"{FOLDER}/{p.name}")
    return out


def reward_path(ws, name: str) -> tuple[str, Path]:
    """('rewards/NAME.py', its path) for `name` as typed ('x', 'x.py' or 'rewards/x.py'). UserError
    for any other folder, a name that is not a plain Python file name, or a path that resolves
    outside the workspace (the confinement `reward test` applies: reward code runs only from there)."""
    given = (name or "").strip()
    if not given:
        raise UserError("give a reward file name, e.g. rewards/my_reward.py", "reward_name_missing")
    base = given[len(FOLDER) + 1:] if given.startswith(FOLDER + "/") else given
    if not base.endswith(".py"):
        base += ".py"
    if not NAME.match(base):
        raise UserError(f"reward file '{given}': use a plain file name in {FOLDER}/ (letters, digits, _ and -, "
                        "ending in .py), e.g. rewards/my_reward.py", "reward_name_bad", name=given, folder=FOLDER)
    path = ws.rewards_dir / base
    inside_workspace(ws, given, path)   # the confinement `reward test` applies (rewards/process_box.py)
    return f"{FOLDER}/{base}", path


def open_reward(ws, name: str) -> tuple[str, str, bool]:
    """(relative name, its text, whether it exists): a file not written yet opens with a template."""
    rel, path = reward_path(ws, name)
    if not path.exists():
        return rel, TEMPLATE, False
    if not path.is_file():
        raise UserError(f"{rel} is not a file", "reward_not_file", name=rel)
    return rel, path.read_text(encoding="utf-8"), True


def save_reward(ws, name: str, text: str) -> tuple[str, str | None]:
    """Write `text` to the reward file (creating rewards/); returns (relative name, a syntax problem
    as 'rewards/x.py:LINE: ...' or None). A file with a syntax error is still saved (a draft), and
    the problem is reported, as `reward test` would report it."""
    rel, path = reward_path(ws, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text or "", encoding="utf-8")
    tmp.replace(path)   # a crash mid-write never leaves half a reward file
    try:
        compile(text or "", rel, "exec")
    except SyntaxError as e:
        return rel, f"{rel}:{e.lineno}: {e.msg}"
    return rel, None


# ---- the test, through the CLI ------------------------------------------------------------------

def model_choices(ws, lang: str | None = None) -> list[tuple[str, str]]:
    """(label, 'model:NAME' or 'run:ID') for the model to sample from: base models, then finished runs."""
    out = [(f"{t(lang, 'rewards_panel.base')}: {m}", f"model:{m}") for m in ws.list_models()]
    out += [(f"{t(lang, 'rewards_panel.run')}: {label}", f"run:{rid}") for label, rid in run_choices(ws, True, lang)]
    return out


def test_argv(ws, spec: str, dataset: str, source: str, n: int = 8) -> list[str]:
    """The `tunestudio reward test ... --json` command line for `source` ('model:NAME' or 'run:ID')."""
    kind, _, value = (source or "").partition(":")
    if kind not in ("model", "run") or not value:
        raise UserError("pick a model or a run to sample the completions from", "reward_pick_source")
    if not dataset:
        raise UserError("pick a dataset of prompts (e.g. demo-rewards.jsonl)", "reward_pick_dataset")
    if not (spec or "").strip():
        raise UserError("--rewards: give the rewards to test, e.g. rewards/my_reward.py or exact_match",
                        "reward_spec_missing")
    return [sys.executable, "-m", "tunestudio", "reward", "test", "--workspace", str(ws.root),
            "--rewards", spec.strip(), "--dataset", dataset, f"--{kind}", value, "-n", str(int(n)), "--json"]


def run_test(ws, spec: str, dataset: str, source: str, n: int = 8, timeout: float = TEST_TIMEOUT_S) -> dict:
    """Run the reward test in its own process; its JSON ({"rows", "means", "rewards", "model", ...},
    see rewards.scoring.reward_test). UserError with the CLI's message (file:line for a broken reward)
    and, read back from the error file the CLI writes (errors.ERROR_FILE_ENV), its code and fields."""
    argv = test_argv(ws, spec, dataset, source, n)
    with tempfile.TemporaryDirectory() as tmp:
        error_file = Path(tmp) / "error.json"   # the CLI writes its UserError there, with its code
        # a session of its own: at the time limit the test, its reward worker and whatever the reward
        # forked are stopped together (process_box.kill_session), and nothing of it outlives the test
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ws.root,
                                env={**os.environ, ERROR_FILE_ENV: str(error_file)}, start_new_session=True)
        try:
            out, errs = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"the reward test took longer than {timeout:g} s and was stopped", "reward_test_timeout",
                            seconds=f"{timeout:g}") from None
        finally:
            kill_session(proc.pid, grace=5.0 if proc.poll() is None else 0)
            if proc.returncode is None:
                proc.communicate()
        done = subprocess.CompletedProcess(argv, proc.returncode, out, errs)
        record = read_json_or_none(error_file) if done.returncode != 0 else None
    if done.returncode == 0:
        return json.loads(done.stdout)
    if record and record.get("code"):   # worded in the UI's language from the worker's code and fields
        raise UserError(record["message"], "reward_test_error", error=record)
    lines = [x for x in done.stderr.strip().splitlines() if x.strip()]
    errors = [x[len("error: "):] for x in lines if x.startswith("error: ")]
    if record or errors:   # an error without a code: the worker's English, said to be English
        english = record["message"] if record else "\n".join(errors)
        raise UserError(english, "engine_english", detail=english)
    tail = "\n".join(lines[-5:])
    raise UserError(f"the reward test ended with exit code {done.returncode}: {tail}", "reward_test_crashed",
                    exit=done.returncode, detail=tail)


def result_table(out: dict, lang: str) -> pd.DataFrame:
    """One row per completion: prompt, completion, each reward (by its name), total; headers in `lang`."""
    names = [r["name"] for r in out["rewards"]]
    cols = [t(lang, "rewards_panel.col.prompt"), t(lang, "rewards_panel.col.completion"), *names,
            t(lang, "rewards_panel.col.total")]
    rows = [[r["prompt"], r["completion"], *(round(r["rewards"][n], 4) for n in names), round(r["total"], 4)]
            for r in out["rows"]]
    return pd.DataFrame(rows, columns=cols)


# ---- the panel -----------------------------------------------------------------------------------

def build(ctx: Context, objective) -> gr.Accordion:
    """The panel, visible while the form's `objective` dropdown says grpo."""
    ws = ctx.ws
    files = reward_files(ws)
    datasets = ws.list_datasets()
    with gr.Accordion(t(DEFAULT, "rewards_panel.title"), open=True, visible=objective.value == "grpo",
                      elem_id="rewards-panel") as box:
        ctx.tr(box, label="rewards_panel.title")
        intro = gr.Markdown(t(DEFAULT, "rewards_panel.intro"))
        ctx.tr(intro, value="rewards_panel.intro")
        limits = gr.Markdown(t(DEFAULT, "rewards_panel.limits"), elem_id="rewards-limits")   # docs/security.md
        ctx.tr(limits, value="rewards_panel.limits")
        with gr.Row():
            file = gr.Dropdown(choices=files, value=files[0] if files else None, allow_custom_value=True,
                               elem_id="rewards-file", scale=3, **ctx.texts.initial(label="rewards_panel.file",
                                                                                     info="rewards_panel.file_info"))
            ctx.tr(file, label="rewards_panel.file", info="rewards_panel.file_info")
            open_btn = gr.Button(t(DEFAULT, "rewards_panel.open"), elem_id="rewards-open", scale=0, min_width=100)
            save_btn = gr.Button(t(DEFAULT, "rewards_panel.save"), elem_id="rewards-save", scale=0, min_width=100)
            ctx.tr(open_btn, value="rewards_panel.open")
            ctx.tr(save_btn, value="rewards_panel.save")
        code = gr.Code(language="python", interactive=True, elem_id="rewards-code", lines=12,
                       label=t(DEFAULT, "rewards_panel.code"))
        ctx.tr(code, label="rewards_panel.code")
        with gr.Row():
            spec = gr.Textbox(value=files[0] if files else "", elem_id="rewards-spec", scale=3,
                              **ctx.texts.initial(label="rewards_panel.spec", info="rewards_panel.spec_info"))
            ctx.tr(spec, label="rewards_panel.spec", info="rewards_panel.spec_info")
            pick = "demo-rewards.jsonl" if "demo-rewards.jsonl" in datasets else None
            data = gr.Dropdown(choices=datasets, value=pick, allow_custom_value=True, elem_id="rewards-dataset",
                               scale=2, label=t(DEFAULT, "rewards_panel.dataset"))
            ctx.tr(data, label="rewards_panel.dataset")
            models = model_choices(ws)
            source = gr.Dropdown(choices=models, value=models[0][1] if models else None, elem_id="rewards-model",
                                 scale=2, label=t(DEFAULT, "rewards_panel.model"))
            ctx.tr(source, label="rewards_panel.model")
            ctx.model_lists.append((source, lambda lang: model_choices(ws, lang)))
        test_btn = gr.Button(t(DEFAULT, "rewards_panel.test"), variant="secondary", elem_id="rewards-test")
        ctx.tr(test_btn, value="rewards_panel.test")
        message = gr.Markdown(elem_id="rewards-message")
        table = gr.Dataframe(interactive=False, wrap=True, visible=False, elem_id="rewards-table", max_chars=160,
                             label=t(DEFAULT, "rewards_panel.table"))
        ctx.tr(table, label="rewards_panel.table")

    objective.change(lambda o: gr.update(visible=o == "grpo"), [objective], [box], api_visibility="private")

    def refresh(lang, current, current_source):
        fs = reward_files(ws)
        ms = model_choices(ws, lang)
        keep = current_source if current_source in {v for _, v in ms} else (ms[0][1] if ms else None)
        return gr.update(choices=fs, value=current), gr.update(choices=ws.list_datasets()), \
            gr.update(choices=ms, value=keep)

    if ctx.current_tab is not None:
        ctx.current_tab.select(refresh, [ctx.lang, file, source], [file, data, source], api_visibility="private")
    ctx.on_language(refresh, [ctx.lang, file, source], [file, data, source])

    def open_work(lang, name):
        try:
            rel, text, exists = open_reward(ws, name)
        except Exception as e:
            return err(e), [gr.skip(), gr.skip()]
        return msg("rewards_panel.opened" if exists else "rewards_panel.new", file=rel), [text, rel]

    def save_work(lang, name, text):
        try:
            rel, problem = save_reward(ws, name, text)
        except Exception as e:
            return err(e), [gr.skip()]
        said = msg("rewards_panel.saved", file=rel)
        if problem:
            said += msg("rewards_panel.syntax", problem=problem)
        return said, [gr.update(choices=reward_files(ws), value=rel)]

    def test_work(lang, spec_text, dataset, src):   # blocks for seconds (minutes on a large model)
        try:
            return {"result": run_test(ws, spec_text, dataset, src)}
        except Exception as e:
            return err(e)

    def render(lang, said):
        if isinstance(said, dict):
            out = said["result"]
            means = ", ".join(f"{k} {v:.3f}" for k, v in out["means"].items() if k != "total")
            head = t(lang, "rewards_panel.tested", n=out["n"], model=out["model"], dataset=out["dataset"],
                     means=means, total=f"{out['means']['total']:.3f}")
            return head, shown(result_table(out, lang))
        return say(lang, said), shown(None)

    def render_message(lang, said):
        return say(lang, said), gr.skip()

    view = ctx.view([message, table])
    view.act(open_btn.click, open_work, render_message, [file], extra=[code, spec])
    view.act(save_btn.click, save_work, render_message, [file, code], extra=[file])
    view.act(test_btn.click, test_work, render, [spec, data, source])
    # the file chosen in the list opens at once, as the Open button would
    view.act(file.select, open_work, render_message, [file], extra=[code, spec])
    def first_text(name):
        try:
            return open_reward(ws, name)[1] if name else ""
        except (UserError, OSError):
            return ""   # shown when the user opens it, with the reason

    ctx.on_load(first_text, [file], [code])
    return box

