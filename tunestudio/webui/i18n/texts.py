"""UI texts in translation files: `locales/<code>.yaml`, one file per language.

A new language is one new file (copy en.yaml, translate the values, set `_name`). Keys missing
from a language fall back to English, then to the key itself, so a half-done translation still
shows every text. Components register the texts they show with `Texts.bind`; switching the
`ui-language` dropdown sends every bound component a `gr.update` with its texts in the new
language, with no page reload.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from importlib import resources

import yaml

DEFAULT = "en"


@lru_cache(maxsize=None)
def catalog(code: str) -> dict:
    try:
        text = resources.files("tunestudio.webui.i18n").joinpath("locales", f"{code}.yaml").read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return _flatten(yaml.safe_load(text) or {})


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def languages() -> list[tuple[str, str]]:
    """(display name, code) for every locales/*.yaml, English first."""
    folder = resources.files("tunestudio.webui.i18n").joinpath("locales")
    codes = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    codes.sort(key=lambda c: c != DEFAULT)
    return [(catalog(c).get("_name", c), c) for c in codes]


def has(lang: str, key: str) -> bool:
    return key in catalog(lang or DEFAULT) or key in catalog(DEFAULT)


def t(lang: str | None, key: str, **fmt) -> str:
    """The text for `key` in `lang` (falling back to English, then the key), formatted with `fmt`."""
    text = catalog(lang or DEFAULT).get(key)
    if text is None:
        text = catalog(DEFAULT).get(key, key)
    if fmt:
        try:
            return str(text).format(**fmt)
        except (KeyError, IndexError, ValueError):
            return str(text)
    return str(text)


_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def ui_flags(lang: str | None, text: str) -> str:
    """`text` (an engine help or error, written for the command line) with each `--flag` that is a
    Training-tab field named by that field's label in `lang` first: "ignored when --max-steps is
    set" -> 'ignored when "Max steps" (--max-steps) is set'. Other flags are left as they are."""
    def name(m: re.Match) -> str:
        key = "param." + m.group(1).replace("-", "_")
        return f"“{t(lang, key)}” ({m.group(0)})" if has(lang, key) else m.group(0)

    return _FLAG.sub(name, text)


class Texts:
    """Which component shows which text: the list the language switch walks through."""

    def __init__(self):
        # (component, {property: key or callable(lang)}, id of the tab it is on; None: outside the tabs)
        self.bindings: list[tuple[object, dict, str | None]] = []

    def bind(self, component, tab: str | None = None, **props):
        """Register `component`'s translatable properties (label=, info=, value=, placeholder=);
        each is a key in the locale files, or a function lang -> text for texts made elsewhere
        (the engine's help strings). `tab`: the id of the tab the component is on (None: the
        header, the tab names: shown whatever the tab). Returns the component, so it reads inline."""
        for c, existing, _ in self.bindings:
            if c is component:  # one update per component per event: merge its properties
                existing.update(props)
                return component
        self.bindings.append((component, props, tab))
        return component

    @staticmethod
    def resolve(lang: str, spec) -> str:
        return spec(lang) if callable(spec) else t(lang, spec)

    def initial(self, **props) -> dict:
        """Constructor keyword arguments in the default language: gr.Textbox(**texts.initial(label=...))."""
        return {k: self.resolve(DEFAULT, v) for k, v in props.items()}

    def groups(self) -> list[tuple[str | None, list, object]]:
        """The bindings by tab, in the order they were bound: (tab id or None, components,
        fn(lang) -> one gr.update per component, its texts in `lang`). A language switch sends each
        group as its own event: the browser's work per event grows with its number of outputs,
        skipped ones included (one event with every component kept the whole page in the old
        language for seconds)."""
        import gradio as gr

        order: list = []
        for _, _, tab in self.bindings:
            if tab not in order:
                order.append(tab)
        out = []
        for tab in order:
            mine = [(c, props) for c, props, t_ in self.bindings if t_ == tab]

            def fn(lang, mine=mine):
                return [gr.update(**{k: self.resolve(lang, v) for k, v in props.items()}) for _, props in mine]
            fn.__name__ = f"texts_{tab or 'header'}"   # what a trace of the switch's requests names
            out.append((tab, [c for c, _ in mine], fn))
        return out


def engine_warning(lang: str | None, warning) -> str:
    """An engine warning or error in `lang`. `warning` is a run's warning event ({type, code,
    message, ...fields}; train/events.py `EventLog.warn`), a data problem ({file, line, message,
    code, fields}; data/formats/readers.py `Problem.to_dict`), or plain text. An event whose code has an
    `engine.<code>` text is worded from that text and the event's fields; a field value is
    translated where the files have a word for it (`engine.word.<field>.<value>`, then
    `engine.word.<value>`, such as the split "training"), a list is worded item by item, and a
    field that is itself {code, message, ...} (a place such as "tool call 2 of message 3") is
    worded the same way. Anything else (a library's words, a code without a text, an event that
    lacks a field the text needs) is the engine's English message, its `--flags` named as
    Training-tab fields (`ui_flags`)."""
    worded = _coded(lang, warning)
    return worded if worded is not None else ui_flags(lang, _english(warning))


def engine_error(lang: str | None, error) -> str:
    """Why something failed (a UserError, or its record {message, code, fields} read back from a
    job's exit record, a failed event or an export's error file), in `lang`: worded from its
    code like `engine_warning`; an error without a code (or without a text for it) in another
    language is the engine's English detail behind a lead in `lang` ("The tool's message, in
    English: ..."), so the line still says in the UI's language that what follows is untranslated."""
    worded = _coded(lang, error)
    if worded is not None:
        return worded
    english = ui_flags(lang, _english(error))
    return english if (lang or DEFAULT) == DEFAULT else t(lang, "engine.untranslated", detail=english)


def _english(warning) -> str:
    if isinstance(warning, dict):
        return str(warning.get("message") or warning.get("code") or "")
    return str(warning)


def _coded(lang: str | None, warning) -> str | None:
    """`warning` worded from its `engine.<code>` text in `lang`, or None where it cannot be (no code,
    no text for the code, a field the text needs is missing)."""
    if not isinstance(warning, dict):
        code = getattr(warning, "code", None)   # errors.CodedText / CodedError: the same parts
        if code is None:
            return None
        warning = {"code": code, "message": str(warning), **(getattr(warning, "fields", None) or {})}
    key = f"engine.{warning.get('code')}"
    if not warning.get("code") or not has(lang, key):
        return None
    fields = {k: v for k, v in warning.items() if k not in ("type", "code", "message", "fields")}
    fields.update(warning.get("fields") or {})
    text = str(t(lang, key))
    needed = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    if needed - set(fields):   # a field the event lacks (an older run's events): the engine's words
        return None
    return text.format(**{k: _word(lang, k, v) for k, v in fields.items()})


# run options picked outside the Training tab's form: the labels of their pickers
PICKER_LABELS = {"model": "model.select", "dataset": "training.dataset"}


def _word(lang: str | None, field: str, value):
    """A field's value in `lang` (see engine_warning)."""
    if isinstance(value, dict) and value.get("code"):
        return engine_warning(lang, value)
    if isinstance(value, dict) and "message" in value:   # an uncoded error record (errors.error_record)
        return ui_flags(lang, str(value["message"]))
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_word(lang, field, v)) for v in value)
    if field == "option" and isinstance(value, str):
        # a run-config option: named by its Training-tab label, its flag second (as ui_flags does)
        key = PICKER_LABELS.get(value, f"param.{value}")
        if has(lang, key):
            return f"“{t(lang, key)}” (--{value.replace('_', '-')})"
    if field == "status" and isinstance(value, str) and has(lang, f"training.state.{value}"):
        return t(lang, f"training.state.{value}")
    if isinstance(value, str):
        for key in (f"engine.word.{field}.{value}", f"engine.word.{value}"):
            if has(lang, key):
                return t(lang, key)
    return value
