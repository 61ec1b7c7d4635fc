"""A model name with a typo: the Training tab says why in the UI's language, never as an error pop-up."""

from tunestudio.core.workspace import Workspace


def test_a_model_typo_is_said_in_the_note_and_the_preset_still_applies(demo_ws):
    from tunestudio.webui.tabs.training.form import apply_preset, model_note_text, preset_fields, preset_for

    ws = Workspace(demo_ws)
    note = model_note_text(ws, "tet", "tiny-dmeo", "lora", None, {})
    assert "karik ita hakarak 'tiny-demo'" in note, note
    assert preset_for(ws, "tiny-dmeo")["lr"] > 0           # no exception: Gradio would show it in English
    names = preset_fields()
    assert len(apply_preset(ws, "tiny-dmeo", {n: None for n in names}, names)) == len(names)
