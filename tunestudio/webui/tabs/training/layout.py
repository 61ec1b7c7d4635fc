"""The Training tab's form laid out: the common path in one row, then "Find an option" and every
other option in a folded group (groups.py says which), two a row so that, folded, they take
little of the screen and the Start button stays in sight at 1280x800.

Only layout and the search's visibility updates live here; what the inputs do is wired in tab.py.
"""

from __future__ import annotations

import gradio as gr

from tunestudio.webui.i18n.texts import DEFAULT, t
from tunestudio.webui.tabs.training import groups
from tunestudio.webui.tabs.training.form import input_for

PER_ROW = 2   # fields a row inside a group (a group is half the page wide)


def build_form(ctx, by_name: dict, runs_now: list, initial: dict) -> dict:
    """The inputs of every form field ({name: component}), laid out; wires the search box."""
    inputs: dict = {}
    with gr.Row(elem_id="training-main"):
        for name in groups.MAIN:
            inputs[name] = input_for(by_name[name], ctx, runs_now, initial)
    laid = list(groups.layout().items())
    boxes: dict = {}
    rows: list = []   # (a row inside a group, its fields): a row whose fields a search hides goes too
    # two columns read row by row: the search box, then the groups (one closed group is one line)
    with gr.Row(elem_id="training-groups", equal_height=False):
        with gr.Column():
            find = gr.Textbox(label=t(DEFAULT, "training.find"), placeholder=t(DEFAULT, "training.find_hint"),
                              elem_id="training-find", max_lines=1, show_label=False)   # its hint names it
            ctx.tr(find, label="training.find", placeholder="training.find_hint")
            nothing = gr.Markdown(visible=False, elem_id="training-find-none")
            _groups(ctx, laid[1::2], by_name, runs_now, initial, inputs, boxes, rows)
        with gr.Column():
            _groups(ctx, laid[0::2], by_name, runs_now, initial, inputs, boxes, rows)
    boxes = {g: boxes[g] for g, _ in laid}   # the table's order
    _wire_search(ctx, find, nothing, boxes, inputs, rows)
    return inputs


def _groups(ctx, laid: list, by_name: dict, runs_now: list, initial: dict, inputs: dict, boxes: dict,
            rows: list) -> None:
    for group, names in laid:
        with gr.Accordion(t(DEFAULT, f"training.group.{group}"), open=False, elem_id=f"training-group-{group}") as box:
            ctx.tr(box, label=f"training.group.{group}")
            for i in range(0, len(names), PER_ROW):
                with gr.Row() as row:
                    for name in names[i:i + PER_ROW]:
                        inputs[name] = input_for(by_name[name], ctx, runs_now, initial)
                rows.append((row, names[i:i + PER_ROW]))
        boxes[group] = box


def search_updates(lang: str, query: str, names: list[str], hidden: set[str], group_names: list[str]) -> list:
    """The updates a search makes: [the "nothing found" line, each group in `group_names`, each field in
    `names`]. An empty query puts the folded layout back; otherwise only the fields that match show
    (`hidden`: fields that never show here, such as the launcher with one device) and their groups open."""
    lang = lang or DEFAULT
    query = (query or "").strip()
    if not query:
        return ([gr.update(visible=False)] + [gr.update(visible=True, open=False) for _ in group_names]
                + [gr.update(visible=n not in hidden) for n in names])
    found = groups.matching(lang, query, names) - hidden
    shown = {groups.group_of(n) for n in found}
    line = gr.update(visible=not found, value=t(lang, "training.find_none", query=query))
    return ([line] + [gr.update(visible=g in shown, open=g in shown) for g in group_names]
            + [gr.update(visible=n in found) for n in names])


def _wire_search(ctx, find, nothing, boxes: dict, inputs: dict, rows: list) -> None:
    names = list(inputs)
    hidden = {n for n, c in inputs.items() if c.visible is False}   # e.g. the launcher with one device
    group_names = list(boxes)
    outputs = [nothing, *boxes.values(), *inputs.values(), *[row for row, _ in rows]]

    def search(lang, query):
        updates = search_updates(lang, query, names, hidden, group_names)
        shown = {n for n, u in zip(names, updates[1 + len(group_names):]) if u.get("visible")}
        return updates + [gr.update(visible=any(n in shown for n in fields)) for _, fields in rows]

    # as the user types; off the queue, so a search never waits behind a running handler
    find.change(search, [ctx.lang, find], outputs, api_visibility="private", queue=False, show_progress="hidden",
                trigger_mode="always_last")

    def search_again(lang, query):   # a language switch: what is found is looked up in the new labels
        return search(lang, query) if (query or "").strip() else [gr.skip()] * len(outputs)

    ctx.on_language(search_again, [ctx.lang, find], outputs)
