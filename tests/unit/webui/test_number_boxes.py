"""Number boxes say what is wrong in the UI's language, and Clean's new file shows in the file table."""

from tunestudio.core.workspace import Workspace


def test_no_number_box_leaves_its_check_to_gradios_red_pill(workspace):
    # Gradio's own minimum=/maximum= check answers -5 with a raw red pill over the last result
    # ("row −5", "Examples 0" in the newcomer's walk); each handler says it instead.
    import gradio as gr

    from tunestudio.webui.app import build_app

    demo = build_app(Workspace(workspace))
    boxes = [c for c in demo.blocks.values() if isinstance(c, gr.Number)]
    assert boxes
    bounded = [c.elem_id for c in boxes if c.minimum is not None or c.maximum is not None]
    assert not bounded, bounded


def test_a_number_below_its_least_is_named_by_its_label_in_each_language():
    from tunestudio.webui.common.context import number_problem

    assert number_problem("en", "datasets.row", -5, 1, 1) == "⚠ “Line in the file” must be at least 1 (it is -5)"
    assert number_problem("tet", "datasets.row", 0, 1, 1) == "⚠ “Liña iha ficheiru” tenke 1 ka liu (agora 0)"
    assert "is empty" in number_problem("en", "rate.n", None, 10, 1)
    assert number_problem("en", "rate.n", 3, 10, 1) is None


def test_clean_refreshes_the_files_table(workspace):
    from tunestudio.webui.app import build_app

    demo = build_app(Workspace(workspace))
    ids = {getattr(c, "elem_id", None): c._id for c in demo.blocks.values()}
    clean = [d for d in demo.fns.values() if (ids["datasets-clean"], "click") in [tuple(t) for t in d.targets]]
    assert any(ids["datasets-table"] in [o._id for o in d.outputs] for d in clean)


def test_the_model_and_training_tabs_give_one_estimate_for_the_same_settings(demo_ws):
    """Without a dataset both estimate rows of the full max length: the same figure; the Model tab
    says the Training tab's figure follows the dataset's own lengths (why the two may differ)."""
    from tunestudio.webui.i18n.texts import t
    from tunestudio.webui.tabs.model import memory_rows
    from tunestudio.webui.tabs.training.status import memory_text

    ws = Workspace(demo_ws)
    table = memory_rows(ws, "en", "tiny-demo", 8, 512)
    lora = table[table.iloc[:, 0] == "lora"].iloc[0]
    text = memory_text(ws, "en", "tiny-demo", "lora", 8, 512, "auto", False, 16)
    assert f"Memory estimate: about {lora.iloc[2]} " in text, (lora.iloc[2], text)
    assert "dataset's own row lengths" in t("en", "model.memory")
