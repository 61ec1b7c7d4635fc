"""Web UI handlers called directly, without a browser: the Chat tab's system prompt as trained,
the remembered language, the length histogram's bins, empty tables' headers."""

from __future__ import annotations

import dataclasses
import json

from tunestudio.core.workspace import Workspace
from tunestudio.train.config_check import validate


def _chat_file(ws: Workspace, name: str, systems: list[str | None]) -> None:
    lines = []
    for i, system in enumerate(systems):
        msgs = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
        lines.append(json.dumps({"messages": msgs}))
    (ws.datasets_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _run_with(ws: Workspace, run_id: str, dataset: str) -> None:
    """A run folder as training leaves it: split.json records exactly the rows it trained on."""
    from tunestudio.data.split import load_splits

    run_dir = ws.runs_dir / run_id
    run_dir.mkdir(parents=True)
    info = load_splits(ws, dataset, val_split=0.2, test_split=0.0, seed=1).info
    (run_dir / "split.json").write_text(json.dumps(info), encoding="utf-8")


def test_chat_system_prompt_is_the_runs_training_prompt(workspace):
    from tunestudio.webui.tabs.chat import system_for_source, training_system_prompt

    ws = Workspace(workspace)
    prompt = "You are a terse pirate. Answer in one line."
    _chat_file(ws, "shared.jsonl", [prompt] * 18 + ["Something else."] + [None])
    _chat_file(ws, "mixed.jsonl", [f"prompt {i}" for i in range(10)] + [None] * 10)
    _chat_file(ws, "none.jsonl", [None] * 10)
    for run_id, name in (("r-shared", "shared"), ("r-mixed", "mixed"), ("r-none", "none")):
        _run_with(ws, run_id, f"{name}.jsonl")

    assert training_system_prompt(ws, "r-shared") == prompt
    assert system_for_source(ws, "run:r-shared") == prompt
    assert training_system_prompt(ws, "r-mixed") == ""  # no prompt most rows share
    assert training_system_prompt(ws, "r-none") == ""
    assert system_for_source(ws, "model:tiny-demo") == ""  # a base model: nothing of ours
    assert system_for_source(ws, None) == ""
    assert training_system_prompt(ws, "no-such-run") == ""
    # the data changed since the run: its rows cannot be read back, so nothing is guessed
    _chat_file(ws, "shared.jsonl", ["changed"] * 5)
    assert training_system_prompt(ws, "r-shared") == ""


def test_chat_system_prompt_box_is_visible_and_filled_on_pick(workspace):
    import gradio as gr

    from tunestudio.webui.app import build_app

    ws = Workspace(workspace)
    demo = build_app(ws)
    box = next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "chat-system")
    assert box.visible and box.interactive
    parent = box.parent
    while parent is not None:  # not inside a closed accordion
        assert not (isinstance(parent, gr.Accordion) and not parent.open)
        parent = parent.parent
    source = next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "chat-source")
    fills = [d for d in demo.fns.values()
             if (source._id, "change") in [tuple(t) for t in d.targets]
             and [o._id for o in d.outputs] == [box._id]]
    assert fills, "picking a source in Chat does not fill the system prompt box"


def test_language_choice_is_remembered_per_browser(workspace):
    import gradio as gr

    from tunestudio.webui.app import LANG_STORAGE_KEY, build_app, remember_language, restore_language

    assert restore_language("tet") == "tet"
    assert restore_language(None) == "en"          # a browser that never chose
    assert restore_language("xx") == "en"          # a language since removed
    assert restore_language({"bad": 1}) == "en"
    assert remember_language("tet") == "tet"

    demo = build_app(Workspace(workspace))
    stored = [c for c in demo.blocks.values() if isinstance(c, gr.BrowserState)]
    assert len(stored) == 1 and stored[0].storage_key == LANG_STORAGE_KEY
    lang = next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "ui-language")
    fns = list(demo.fns.values())
    saves = [d for d in fns if (lang._id, "change") in [tuple(t) for t in d.targets]
             and [o._id for o in d.outputs] == [stored[0]._id]]
    loads = [d for d in fns if [i._id for i in d.inputs] == [stored[0]._id]
             and [o._id for o in d.outputs] == [lang._id] and tuple(d.targets[0])[1] == "load"]
    assert saves and saves[0].fn("tet") == "tet"
    assert loads and loads[0].fn("tet") == "tet"
    # restoring sets the dropdown, whose change re-renders every text
    assert any((lang._id, "change") in [tuple(t) for t in d.targets] and len(d.outputs) > 10 for d in fns)


def test_length_histogram_plot_in_length_order_with_whole_row_counts():
    from tunestudio.data.quality.stats import histogram
    from tunestudio.webui.tabs.datasets.tab import histogram_plot

    plot = histogram_plot(histogram([10, 20, 30, 120, 130, 600], cutoff=512))
    labels = list(plot["value"]["tokens"])
    assert plot["sort"] == labels and labels[0].startswith("0–") and labels[-1] == "> 512"
    los = [int(x.split("–")[0]) for x in labels[:-1]]
    assert los == sorted(los) and int(labels[-2].split("–")[1]) <= 512   # no bin past the cutoff
    assert plot["value"]["rows"].dtype.kind == "i" and plot["value"]["rows"].sum() == 6
    assert plot["y_lim"][0] == 0 and plot["y_lim"][1] >= 5 and plot["y_axis_format"] == "d"


def test_messages_name_the_ui_field_before_the_cli_flag():
    import re

    from tunestudio.config.run_config import RunConfig
    from tunestudio.core.errors import UserError
    from tunestudio.webui.common.context import error_text
    from tunestudio.webui.i18n import texts as i18n
    from tunestudio.webui.tabs.training import tab as tab_training

    fields = {f.name: f for f in __import__("dataclasses").fields(RunConfig)}
    assert tab_training.shown_help("en", fields["epochs"]) == \
        "passes over the training data (ignored when “Max steps” (--max-steps) is set)"
    assert "“Pasu másimu” (--max-steps)" in tab_training.shown_help("tet", fields["epochs"])
    # every form field's help, in every language: no field's --flag without its label before it
    for lang in ("en", "tet"):
        for f in fields.values():
            shown = tab_training.shown_help(lang, f)
            for m in re.finditer(r"(?<![\w-])--([a-z][a-z0-9-]*)", shown):
                key = "param." + m.group(1).replace("-", "_")
                if i18n.has(lang, key):
                    assert shown[:m.start()].endswith(f"“{i18n.t(lang, key)}” ("), (lang, f.name, shown)
    # the engine's errors reach the UI with the field named first
    msg = error_text("en", UserError("nothing left at --max-length 64: raise --max-length"))
    assert msg == "✖ nothing left at “Max length (tokens)” (--max-length) 64: raise “Max length (tokens)” (--max-length)"
    assert i18n.ui_flags("en", "--no-such-flag and a--b") == "--no-such-flag and a--b"
    # messages that give a CLI command give the UI action before it
    for lang in ("en", "tet"):
        for key, text in i18n.catalog(lang).items():
            if key.startswith("param_help.") or "`tunestudio " not in str(text):
                continue
            assert str(text).index("`tunestudio ") > 20, (lang, key, text)


def test_no_table_shows_bare_column_numbers(workspace):
    import gradio as gr

    from tunestudio.webui.app import build_app
    from tunestudio.webui.i18n import texts as i18n
    from tunestudio.webui.tabs.evaluate.tables import examples_frame, guard_frame, leaderboard_frame, metrics_frame
    from tunestudio.webui.tabs.model import empty_memory_table

    texts = {lang: set(map(str, i18n.catalog(lang).values())) for lang in ("en", "tet")}
    demo = build_app(Workspace(workspace))   # no models, no data, no runs: every table empty
    tables = [c for c in demo.blocks.values() if isinstance(c, gr.Dataframe)]
    assert len(tables) >= 10
    for table in tables:
        if table.visible is False:        # hidden until it has rows
            continue
        headers = table.value["headers"]
        assert headers and not any(str(h).isdigit() for h in headers), (table.elem_id, headers)
        assert set(map(str, headers)) <= texts["en"], (table.elem_id, headers)   # translated texts
    # the handlers' empty answers keep the headers, in the UI's language
    for frame in (metrics_frame("tet", {}), examples_frame([], lang="tet"), leaderboard_frame("tet", []),
                  empty_memory_table("tet"), guard_frame("tet", None)):
        assert len(frame) == 0 and len(frame.columns) >= 4
        assert set(map(str, frame.columns)) <= texts["tet"], list(frame.columns)
    # input | reference | fine-tuned answer | base answer | scores, whatever else the row holds (the downloads
    # keep it)
    filled = examples_frame([{"index": 0, "where": "a.jsonl:1", "prediction": "x", "extra": 1}], lang="tet")
    assert list(filled.columns) == ["pergunta", "referénsia", "resposta afina ona", "resposta modelu baze", "pontu"]
    assert list(filled.iloc[0]) == ["", "", "x", "", ""]


def test_command_shown_before_start_makes_the_same_config(tmp_path):
    """The Training tab's command preview, typed in a shell, gives the CLI the very config the form
    makes (flags parsed by the CLI's own parser); the YAML it saves loads back to the same config."""
    import argparse
    import shlex

    from tunestudio.config import run_config
    from tunestudio.webui.tabs.training.form_io import save_yaml, train_command

    cfg = validate(run_config.from_dict({"model": "tiny-demo", "dataset": "my data.jsonl", "method": "full", "lr": 1e-3,
                                "epochs": 3, "gradient_checkpointing": True, "name": "it's mine",
                                "stages": [{"method": "full", "epochs": 1}]}))
    cmd = train_command(cfg, "/ws/here")
    args = shlex.split(cmd)
    assert args[:2] == ["tunestudio", "train"] and args[-2:] == ["--workspace", "/ws/here"]
    assert "--lr" in args and "--batch-size" not in args   # defaults are left out
    parser = argparse.ArgumentParser()
    run_config.add_arguments(parser)
    parsed = parser.parse_args(args[2:-2])
    again = validate(run_config.from_dict(run_config.overrides_from_args(parsed)))
    assert again.to_dict() == cfg.to_dict()
    path = save_yaml(cfg)
    assert path.endswith("it's mine.yaml") or path.endswith("run-config.yaml")
    assert run_config.load_config(path).to_dict() == cfg.to_dict()
    # a boolean switched off from a True default is written as --no-<flag>
    on_by_default = [f.name for f in dataclasses.fields(cfg) if f.default is True]
    if on_by_default:
        off = run_config.from_dict({"model": "m", "dataset": "d.jsonl", on_by_default[0]: False})
        flag = "--no-" + run_config.flag_name(on_by_default[0])[2:]
        assert flag in shlex.split(train_command(off))


def test_a_field_has_one_flag_in_the_parser_the_command_preview_and_the_messages():
    import argparse
    import shlex

    import pytest

    from tunestudio.config import run_config
    from tunestudio.core.errors import UserError
    from tunestudio.webui.tabs.training.form_io import train_command

    fields = run_config.fields_by_name()
    assert run_config.flag_name("max_length") == run_config.flag_name(fields["max_length"]) == "--max-length"
    assert run_config.flag_name("mapping") == "--map"   # a field with a flag of its own
    parser = argparse.ArgumentParser()
    run_config.add_arguments(parser)
    by_dest = {a.dest: a.option_strings[0] for a in parser._actions if a.dest in fields}
    assert by_dest == {name: run_config.flag_name(name) for name in fields}
    cfg = run_config.from_dict({"model": "m", "dataset": "d.jsonl", "mapping": "instruction=q"})
    assert "--map" in shlex.split(train_command(cfg))
    with pytest.raises(UserError, match="^--max-length: 'x' is not a valid int"):
        run_config.coerce("max_length", "x")
    with pytest.raises(UserError, match="^--lora-r: must be at least 1"):
        validate(run_config.from_dict({"model": "m", "dataset": "d.jsonl", "lora_r": 0}))


def test_a_shown_message_is_said_again_in_the_other_language():
    """What a handler showed is kept as a spec, and said in whichever language is chosen later,
    nested texts (a status inside a message) and the engine's errors included."""
    from tunestudio.core.errors import UserError
    from tunestudio.webui.common.context import err, msg, raw, say

    spec = msg("runs.resumed", job="j1", command="tunestudio train --resume r1",
               status=msg("training.state.queued")) + raw("file.jsonl")
    assert "Resume queued as job `j1` (queued)" in say("en", spec) and say("en", spec).endswith("file.jsonl")
    assert "iha fila" in say("tet", spec) and "Resume queued" not in say("tet", spec)
    bad = err(UserError("--max-steps must be at least 1"))
    assert say("en", bad) == "✖ “Max steps” (--max-steps) must be at least 1"
    assert "(--max-steps)" in say("tet", bad) and "Max steps" not in say("tet", bad)


def test_runs_table_search_status_filter_and_sort(workspace):
    from tunestudio.core import registry
    from tunestudio.webui.tabs.runs.table import table

    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    for i, (name, status, loss) in enumerate((("zeta", "completed", 2.0), ("alpha", "failed", None),
                                              ("mid", "completed", 1.5))):
        registry.insert_run(conn, id=f"r{i}", name=name, status=status, created_at=1_700_000_000 + i,
                            method="lora", dataset="d.jsonl", config={},
                            metrics={"eval_loss": loss} if loss else None)
    conn.close()
    names = lambda df: list(df.iloc[:, 0])   # noqa: E731 (the name column)
    assert names(table(ws, "en")) == ["mid", "alpha", "zeta"]                      # newest first
    assert names(table(ws, "en", sort="name", descending=False)) == ["alpha", "mid", "zeta"]
    assert names(table(ws, "en", sort="best_eval_loss", descending=False)) == ["mid", "zeta", "alpha"]
    assert names(table(ws, "en", status="completed")) == ["mid", "zeta"]
    assert names(table(ws, "en", search="ZE")) == ["zeta"]
    tet = table(ws, "tet", search="alpha")
    assert list(tet.columns)[1] == "estadu" and tet.iloc[0, 1] == "falla"


def test_language_switch_relabels_every_run_list_in_place(workspace):
    """A run's label in a dropdown holds its status, and Chat/Rate prefix its kind ("run · "):
    the language switch sends every such list its choices in the new language, without waiting
    for its tab to be selected again."""
    from tunestudio.core import registry
    from tunestudio.webui.app import build_app
    from tunestudio.webui.i18n.texts import t

    ws = Workspace(workspace)
    conn = registry.connect(ws.db_path)
    registry.insert_run(conn, id="r-done", name="pirate", status="completed", created_at=1_700_000_000,
                        started_at=1_700_000_000, finished_at=1_700_000_060, base_model="tiny-demo",
                        method="lora", dataset="d.jsonl", config={"name": "pirate"}, metrics={})
    conn.close()
    demo = build_app(ws)
    lang = next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "ui-language")
    updates = {}
    for d in demo.fns.values():   # the texts of the header and of each tab (one handler each)
        if (lang._id, "change") in [tuple(x) for x in d.targets] and (d.name or "").startswith("texts_"):
            updates.update(zip([o.elem_id for o in d.outputs], d.fn("tet")))
    status = t("tet", "training.state.completed")
    assert status != t("en", "training.state.completed")
    expect = {"runs-a": f"pirate · {status} · r-done", "runs-b": f"pirate · {status} · r-done",
              "runs-overlay-pick": f"pirate · {status} · r-done", "eval-run": f"pirate · {status} · r-done",
              "param-from-run": f"pirate · {status} · r-done",
              "chat-source": t("tet", "common.source.run", label=f"pirate · {status} · r-done")}
    if "rate-a" in updates:   # the Rate tab needs tunestudio.evaluate.ratings
        expect["rate-b"] = t("tet", "common.source.base_of", label=f"pirate · {status} · r-done")
    for elem_id, label in expect.items():
        assert elem_id in updates, f"{elem_id} is not re-rendered on the language switch"
        choices = [c[0] if isinstance(c, (tuple, list)) else c for c in updates[elem_id]["choices"]]
        assert label in choices, (elem_id, choices)
        assert not any(c.startswith(("run · ", "base of · ", "model · ")) for c in choices), choices


def test_language_switch_labels_first_then_the_rest_quietly(workspace):
    """The browser's work for an event grows with its outputs: the language dropdown's change
    sends the header and tab names as one small event first, then each tab's labels as its own
    event (every bound component in exactly one), besides the stored choice and Gradio's own
    texts; every tab's re-render is chained after the header, and none of them draws a progress
    spinner over the components it re-renders."""
    from tunestudio.webui.app import build_app

    demo = build_app(Workspace(workspace))
    lang = next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "ui-language")
    fns = list(demo.fns.values())
    direct = [d for d in fns if (lang._id, "change") in [tuple(x) for x in d.targets]]
    texts = [d for d in direct if (d.name or "").startswith("texts_")]
    assert {d.name for d in texts} >= {"texts_header", "texts_model", "texts_training", "texts_runs"}
    assert len(direct) == len(texts) + 2, [d.name for d in direct]   # + remember_language, Gradio's texts
    relabel = texts[0]
    assert relabel.name == "texts_header" and len(relabel.outputs) < 20, len(relabel.outputs)
    outs = [o._id for d in texts for o in d.outputs]
    assert len(outs) == len(set(outs)) > 150
    after = [d for d in fns if d.trigger_after == relabel._id]
    assert len(after) >= 10   # the tabs' handlers and every view's replay
    assert all(d.show_progress == "hidden" for d in direct + after)


def test_every_dataset_list_shows_files_stored_after_the_server_started(workspace):
    """A file stored after the UI started (the command line, another browser's upload or Clean)
    is in every dataset list of a page opened later, and in the Training tab's when it is opened:
    the lists are not the ones the server built at start."""
    from tunestudio.webui.app import build_app

    ws = Workspace(workspace)
    (ws.datasets_dir / "old.jsonl").write_text('{"prompt": "q", "completion": "a"}\n', encoding="utf-8")
    demo = build_app(ws)
    (ws.datasets_dir / "new.jsonl").write_text('{"prompt": "q", "completion": "a"}\n', encoding="utf-8")
    by_id = {getattr(c, "elem_id", None): c for c in demo.blocks.values()}
    lists = {name: by_id[name]._id for name in ("datasets-pick", "dataset-select", "bench-dataset", "rate-dataset")}
    table = by_id["datasets-table"]._id
    fns = list(demo.fns.values())
    opened = {d._id for d in fns if d.targets and tuple(d.targets[0])[1] == "load"}   # restore_language
    loads = [d for d in fns if (d._id in opened or d.trigger_after in opened)   # and what runs after it
             and set(lists.values()) | {table} <= {o._id for o in d.outputs}]
    assert len(loads) == 1, "no page-open handler refreshes every dataset list"
    out = loads[0].fn("tet")
    got = dict(zip([o._id for o in loads[0].outputs], out))
    for name, cid in lists.items():
        assert "new.jsonl" in [c[0] if isinstance(c, (list, tuple)) else c for c in got[cid]["choices"]], name
    assert "new.jsonl" in got[table].to_string()
    training_tab = by_id["tab-training"]._id
    on_open_tab = [d for d in fns if (training_tab, "select") in [tuple(t) for t in d.targets]
                   and lists["dataset-select"] in [o._id for o in d.outputs]]
    assert on_open_tab, "opening the Training tab does not refresh its dataset list"


def test_no_input_is_named_by_its_gradio_class(workspace):
    """An input built without a label is named "Textbox", "Dropdown"... by Gradio in a hidden
    label that screen readers say and page text holds: English on a Tetum page. Every input
    has a label of ours, shown or not."""
    import gradio as gr

    from tunestudio.webui.app import build_app

    demo = build_app(Workspace(workspace))
    kinds = (gr.Textbox, gr.Dropdown, gr.Number, gr.Slider, gr.Checkbox, gr.Radio, gr.File)
    unnamed = [(type(c).__name__, c.elem_id) for c in demo.blocks.values()
               if isinstance(c, kinds) and not isinstance(c, gr.BrowserState) and c.visible is not False
               and not c.label]
    assert not unnamed, unnamed


def test_evaluate_shows_the_forgetting_check_in_the_ui_language():
    """The chat guard's line and its question-by-question table, worded in Tetum (no English left)."""
    from lang_check import wrong_language

    from tunestudio.webui.tabs.evaluate.tables import guard_frame, guard_text

    g = {"kind": "chat", "dataset": "demo-general.jsonl", "n": 2, "tuned_right": 0, "base_right": 2, "kept_right": 0,
         "kept_close": 0, "mean_similarity": 0.0, "close_threshold": 0.3, "forgetting": True,
         "rows": [{"prompt": "What is the capital of France?", "reference": "Paris", "base": "Paris.",
                   "tuned": "TEC-4", "right_base": True, "right_tuned": False, "similarity": 0.0}] * 2}
    tet = guard_text("tet", g)
    assert "demo-general.jsonl" in tet and "(0%)" in tet and "Karik modelu haluha" in tet
    assert not wrong_language(tet, "tet", "en"), wrong_language(tet, "tet", "en")
    frame = guard_frame("tet", g)
    assert list(frame.columns)[:3] == ["pergunta", "resposta loos iha", "resposta modelu baze"]
    assert frame.iloc[0].tolist()[3:6] == ["✓", "TEC-4", "✗"]
    ppl = {"kind": "perplexity", "dataset": "demo-guard.txt", "evaluated": {"perplexity": 33.87},
           "base": {"perplexity": 29.83}, "perplexity_ratio": 1.135, "forgetting": False}
    assert guard_text("en", ppl) == ("Forgetting check on **demo-guard.txt**: perplexity 33.87 (base model 29.83, "
                                     "x1.135). ✔ Perplexity did not rise to 1.25 times the base model's.")


def test_chat_shows_html_and_images_as_text_and_sends_the_model_what_was_typed():
    """The Chatbot holds messages escaped (no element of them is rendered); the conversation the
    model is sent next turn is the text as typed, `<`, `&` and entities included."""
    from tunestudio.webui.common.safety import shown_chat, typed_chat
    from tunestudio.webui.tabs import chat

    typed = 'look ![x](http://h/a.png) <img src="http://h/b.png"> a < b && "c" &lt; &amp;'
    shown = shown_chat(typed)
    assert "<" not in shown and typed_chat(shown) == typed
    history = [{"role": "user", "content": shown}, {"role": "assistant", "content": [{"type": "text", "text": shown}]}]
    assert chat._prompt(history, "next") == [{"role": "user", "content": typed}, {"role": "assistant", "content": typed},
                                             {"role": "user", "content": "next"}]
