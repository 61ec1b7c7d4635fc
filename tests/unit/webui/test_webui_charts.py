"""Charts and the texts a language switch must re-say, without a browser (the walkthrough in a real
browser is scripts/walkthrough_check.py): every chart names its series in a legend with titles in
the UI language and is hidden rather than drawn empty; a sweep's trials and the chat's empty-reply
note follow the language."""

from __future__ import annotations

import time

import pandas as pd

from tunestudio.core.workspace import Workspace


def _texts(lang: str) -> set[str]:
    from tunestudio.webui.i18n import texts as i18n

    return {str(v) for v in i18n.catalog(lang).values()}


def test_every_chart_has_a_legend_of_named_series_and_titles_in_the_ui_language(workspace):
    import gradio as gr

    from tunestudio.webui.app import build_app

    demo = build_app(Workspace(workspace))
    plots = [c for c in demo.blocks.values() if isinstance(c, (gr.LinePlot, gr.BarPlot, gr.ScatterPlot))]
    ids = {p.elem_id for p in plots}
    assert {"loss-plot", "lr-plot", "runs-curves", "runs-overlay-plot", "datasets-histogram", "preference-plot",
            "sweeps-scatter"} <= ids, ids
    en = _texts("en")
    for p in plots:
        assert p.color, f"{p.elem_id}: no series column, so no legend"
        assert p.color_title in en, (p.elem_id, p.color_title)    # a locale text, not 'series'
        assert p.visible is False, f"{p.elem_id}: shown before it has data (empty axes)"
        for title in (p.x_title, p.y_title):
            assert title is None or title in en, (p.elem_id, title)   # None: set when drawn (a sweep's names)
    # a switch to Tetum re-says each chart's titles and legend title
    tet = _texts("tet")
    for _, comps, fn in demo.tunestudio_texts.groups():
        for comp, update in zip(comps, fn("tet")):
            if comp in plots:
                assert update.get("color_title") in tet and update.get("label") in tet, (comp.elem_id, update)


def test_chart_frames_name_every_series_and_fix_their_colours():
    from tunestudio.data.quality.stats import histogram
    from tunestudio.webui.common.context import plotted
    from tunestudio.webui.tabs.datasets.tab import histogram_plot
    from tunestudio.webui.tabs.training.status import lr_frame

    lr = lr_frame("tet", [(1, 1e-3), (2, 5e-4)])
    assert set(lr["series"]) == {"taxa aprendizajen"}
    assert lr_frame("en", []) is None
    plot = histogram_plot(histogram([10, 20, 30, 600], cutoff=512), "tet")
    series = list(plot["value"]["series"])
    assert series[-1] == "liña liu limite (tesi)" and set(series[:-1]) == {"liña iha limite nia laran"}
    assert set(plot["color_map"]) == set(series)   # both in the colour domain from the first draw
    drawn = plotted(pd.DataFrame({"step": [1, 1], "loss": [2.0, 3.0], "series": ["A treinamentu", "B treinamentu"]}))
    assert drawn["visible"] is True and set(drawn["color_map"]) == {"A treinamentu", "B treinamentu"}
    assert plotted(None)["visible"] is False and plotted(pd.DataFrame(columns=["step"]))["visible"] is False


def test_example_legend_has_only_the_marks_it_uses_in_the_ui_language():
    from tunestudio.webui.tabs.datasets.tab import marked

    update = marked("tet", [("q", None), ("a", "treina")])
    assert update["color_map"] == {"treina": "green"} and update["value"][1] == ("a", "treina")
    assert marked("en", None) is None


def test_training_monitor_shows_no_empty_axes_for_a_job_that_made_no_run(workspace):
    """A job that failed before its run existed (a broken data file): the status says failed, the
    charts are hidden, not drawn as empty axes."""
    from tunestudio.jobs import queue as jobs
    from tunestudio.webui.tabs.training.status import monitor

    ws = Workspace(workspace)
    log = jobs.jobs_dir(ws) / "j1.log"
    log.write_text("error: data.jsonl, line 3: not valid JSON\n")
    with jobs._locked(ws) as listed:
        listed.append(jobs.Job(id="j1", config_path="", status="failed", started_at=time.time() - 5,
                               finished_at=time.time(), returncode=1, log_path=str(log)))
    status, _, loss, lr, alerts, *_ = monitor(ws, "tet", None)
    assert "falla" in status and "j1" in status, status
    assert loss["visible"] is False and lr["visible"] is False


def test_sweep_trials_states_and_words_in_the_ui_language(monkeypatch, workspace):
    from tunestudio.sweeps import search as sweep
    from tunestudio.webui.tabs.runs import sweep_panel

    trials = [{"number": 0, "state": "complete", "value": 1.5, "params": {"lr": 1e-3}, "run_id": "r0",
               "last_intermediate": 1.5},
              {"number": 1, "state": "pruned", "value": None, "params": {"lr": 3e-4}, "run_id": "r1",
               "last_intermediate": 2.0}]
    summary = {"trials": trials, "importances": {"lr": 1.0}, "best": None, "objective": "eval_loss",
               "direction": "minimize", "counts": {"complete": 1, "pruned": 1}}
    monkeypatch.setattr(sweep, "summary", lambda ws, name: summary)
    text, table, _, scatter, _, param = sweep_panel.sweep_view(Workspace(workspace), "tet", "s", None)
    assert list(table.columns[:2]) == ["koko", "estadu"] and list(table["estadu"]) == ["kompletu", "para sedu"]
    assert set(scatter["state"]) == {"kompletu", "para sedu"} and param == "lr"
    assert "minimiza" in text and "1 kompletu" in text and "minimize" not in text and "complete" not in text
    english = sweep_panel.sweep_view(Workspace(workspace), "en", "s", None)[1]
    assert list(english["trial"]) == [0, 1] and list(english["state"]) == ["complete", "pruned (stopped early)"]


def test_chat_empty_reply_note_follows_the_language_and_is_not_sent_back():
    import gradio as gr

    from tunestudio.webui.i18n.texts import t
    from tunestudio.webui.tabs.chat import _prompt, reword_notes

    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": t("en", "chat.empty_reply")}]
    tet, untouched = reword_notes("tet", history, [{"role": "user", "content": "x"}])
    assert tet[1]["content"] == t("tet", "chat.empty_reply") and tet[0] == history[0]
    assert untouched == gr.skip()
    # the note is ours, not the model's turn: the next prompt carries an empty assistant turn
    assert _prompt(tet, "again")[1] == {"role": "assistant", "content": ""}


def test_no_tetum_text_is_an_english_copy():
    """A text the Tetum file leaves as the English one is English on a Tetum screen, and
    tests/lang_check.py cannot see it (it looks for words one language has and the other lacks)."""
    import re

    from tunestudio.webui.i18n.texts import catalog

    en, tet = catalog("en"), catalog("tet")
    words = re.compile(r"[a-z]{3,}")
    copies = [k for k, v in en.items() if not k.startswith("_") and str(tet.get(k)) == str(v)
              and len(words.findall(re.sub(r"\{[^}]*\}|`[^`]*`", "", str(v)))) >= 3]
    assert not copies, copies
