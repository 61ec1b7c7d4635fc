"""What a newcomer's walk through the UI found: a model typo said in the UI's language, and empty
tables that follow the language switch."""

from tunestudio.core.workspace import Workspace


def test_a_model_typo_is_said_in_the_note_and_the_preset_still_applies(demo_ws):
    from tunestudio.webui.tabs.training.form import apply_preset, model_note_text, preset_fields, preset_for

    ws = Workspace(demo_ws)
    note = model_note_text(ws, "tet", "tiny-dmeo", "lora", None, {})
    assert "karik ita hakarak 'tiny-demo'" in note, note
    assert preset_for(ws, "tiny-dmeo")["lr"] > 0           # no exception: Gradio would show it in English
    names = preset_fields()
    assert len(apply_preset(ws, "tiny-dmeo", {n: None for n in names}, names)) == len(names)


def test_empty_tables_follow_the_language_switch():
    """Before anything is shown, a view's empty outputs (the Evaluate tab's tables: their headers) are
    made again in the new language, not left in the one the page opened in."""
    from tunestudio.webui.common.context import View
    from tunestudio.webui.tabs.evaluate.tables import no_result

    class Ctx:
        views: list = []

    plain = View(Ctx(), ["message", "table"])
    headed = View(Ctx(), ["message", "table"], empty=lambda lang: ["", no_result(lang)[0]])
    assert all(not isinstance(u, str) for u in plain.replay("tet", None))   # skips: left as they are
    message, table = headed.replay("tet", None)
    assert message == "" and "métrika" in list(table.columns), list(table.columns)


def test_a_stop_or_start_message_goes_once_its_job_has_ended(workspace):
    """"Job X is already stopping... press Stop now" stays true only while X runs: once nothing trains or
    waits, the Training tab's monitor clears it (and the Queue another copy button)."""
    from tunestudio.webui.common.context import msg
    from tunestudio.webui.tabs.training.tab import stale

    ws = Workspace(workspace)
    assert stale(ws, (1, [msg("training.already_stopping", job="j1")]))
    assert not stale(ws, (1, [msg("training.precheck_failed", n=1, rows="")]))   # about the form: kept
    assert not stale(ws, None)
