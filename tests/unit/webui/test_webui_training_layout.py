"""The Training tab's layout: the common path above the fold, every other option in exactly one folded
group, and "Find an option" finding options by their label (in the UI's language) or their CLI flag."""

from __future__ import annotations

import pytest

from tunestudio.config import run_config
from tunestudio.core.workspace import Workspace
from tunestudio.webui.tabs.training import groups


def test_every_form_field_is_in_exactly_one_group_or_on_the_common_path():
    listed = [n for names in groups.GROUPS.values() for n in names] + list(groups.MAIN)
    assert len(listed) == len(set(listed)), [n for n in listed if listed.count(n) > 1]
    assert set(listed) == set(groups.form_fields())   # none left out, none unknown
    assert set(groups.MAIN) == {"method", "epochs", "lr", "batch_size"}   # the guide's common path
    laid = groups.layout()
    assert sorted(n for names in laid.values() for n in names) == sorted(set(groups.form_fields()) - set(groups.MAIN))


def test_a_field_the_table_does_not_list_still_gets_a_group():
    engine_groups = {f.metadata["group"] for f in run_config.fields_by_name().values()}
    assert engine_groups <= set(groups.BY_ENGINE_GROUP)
    assert set(groups.BY_ENGINE_GROUP.values()) <= set(groups.GROUPS)


def test_the_built_form_puts_each_field_in_one_closed_group(workspace):
    import gradio as gr

    from tunestudio.webui.app import build_app

    demo = build_app(Workspace(workspace))
    by_id = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    seen = []
    for name in groups.form_fields():
        comp = next(c for eid, c in by_id.items()
                    if eid in (f"param-{name.replace('_', '-')}", {"method": "method", "epochs": "epochs",
                               "lr": "learning-rate", "batch_size": "batch-size"}.get(name)))
        boxes, parent = [], comp.parent
        while parent is not None:
            if isinstance(parent, gr.Accordion):
                boxes.append(parent)
            parent = parent.parent
        if name in groups.MAIN:
            assert not boxes, name   # in sight without opening anything
        else:
            assert [b.elem_id for b in boxes] == [f"training-group-{groups.group_of(name)}"], name
            assert not boxes[0].open, name
        seen.append(name)
    assert len(seen) == len(groups.form_fields())
    assert "training-find" in by_id and "start-training" in by_id


@pytest.mark.parametrize("lang, query, wanted", [
    ("en", "warm", {"warmup_steps", "warmup_ratio"}),
    ("en", "WARMUP steps", {"warmup_steps"}),
    ("en", "--max-length", {"max_length"}),
    ("en", "grad_accum", {"grad_accum"}),   # the flag's words, whichever separator is typed
    ("tet", "warmup", {"warmup_steps", "warmup_ratio"}),   # the flags, in any language
    ("tet", "pasu aklimatasaun", {"warmup_steps"}),           # the guide's Tetum words ...
    ("en", "aklimatasaun", set()),                            # ... not on the English page
    ("tet", "akumulasaun", {"grad_accum"}),   # the Tetum label ...
    ("en", "akumulasaun", set()),             # ... which the English page does not have
    ("tet", "epoka", {"epochs"}),              # accents need not be typed
])
def test_find_an_option_by_label_in_the_ui_language_or_by_flag(lang, query, wanted):
    assert groups.matching(lang, query) == wanted


def test_a_search_opens_the_matching_groups_and_clearing_folds_them_again():
    from tunestudio.webui.tabs.training.layout import search_updates

    names = groups.form_fields()
    group_names = list(groups.layout())
    hidden = {"launcher"}

    def parts(updates):
        line, boxes, fields = updates[0], updates[1:1 + len(group_names)], updates[1 + len(group_names):]
        return line, dict(zip(group_names, boxes)), dict(zip(names, fields))

    line, boxes, fields = parts(search_updates("en", "warmup", names, hidden, group_names))
    assert not line["visible"]
    assert boxes["optimisation"] == {"__type__": "update", "visible": True, "open": True}
    assert all(not b["visible"] for g, b in boxes.items() if g != "optimisation")
    assert {n for n, u in fields.items() if u["visible"]} == {"warmup_steps", "warmup_ratio"}
    # a field that never shows here (the launcher on one device) stays hidden even when it matches
    _, boxes, fields = parts(search_updates("en", "launcher", names, hidden, group_names))
    assert not fields["launcher"]["visible"] and not any(b["visible"] for b in boxes.values())
    line, _, _ = parts(search_updates("tet", "zzz", names, hidden, group_names))
    assert line["visible"] and "zzz" in line["value"]
    line, boxes, fields = parts(search_updates("en", "  ", names, hidden, group_names))
    assert not line["visible"]
    assert all(b["visible"] and not b["open"] for b in boxes.values())
    assert all(u["visible"] == (n not in hidden) for n, u in fields.items())


def test_the_guides_words_for_the_method_find_the_method_field():
    """Step 5 of the guide: "full fine-tuning or LoRA" / "afina total ka LoRA" — the Method field,
    whose label says neither."""
    from tunestudio.webui.tabs.training import groups

    assert "method" in groups.matching("en", "full fine-tuning")
    assert "method" in groups.matching("en", "LoRA") and "lora_r" in groups.matching("en", "LoRA")
    assert "method" in groups.matching("tet", "afina total")
    assert "method" not in groups.matching("en", "warm")
