"""The UI's translation files, without a browser: Tetum covers every English text with the same
{placeholders}, every Training-tab input has its label and help in every language file, the code
asks only for keys that exist, and a half-done language falls back to English."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import types
from pathlib import Path

import pytest

from tunestudio.config.run_config import RunConfig
from tunestudio.webui.i18n import texts as i18n

LOCALES = Path(i18n.__file__).parent / "locales"
WEBUI = Path(i18n.__file__).parents[1]
LANGS = sorted(p.stem for p in LOCALES.glob("*.yaml"))
PICKED = ("model", "dataset")  # own pickers on the Training tab, no form input (tab_training.PICKED)
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _placeholders(text) -> list[str]:
    return sorted(PLACEHOLDER.findall(str(text)))


def _form_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(RunConfig) if f.name not in PICKED]


def test_languages_are_listed_english_first():
    langs = i18n.languages()
    assert langs[0] == ("English", "en")
    assert ("Tetun", "tet") in langs


@pytest.mark.parametrize("lang", [c for c in LANGS if c != i18n.DEFAULT])
def test_every_english_key_is_translated_with_the_same_placeholders(lang):
    en, other = i18n.catalog("en"), i18n.catalog(lang)
    missing = [k for k in en if k not in other]
    assert not missing, f"{lang}.yaml lacks {len(missing)} key(s): {missing}"
    extra = [k for k in other if k not in en]
    assert not extra, f"{lang}.yaml has keys English does not: {extra}"
    wrong = {k: (_placeholders(en[k]), _placeholders(other[k]))
             for k in en if _placeholders(en[k]) != _placeholders(other[k])}
    assert not wrong, f"{lang}.yaml placeholders differ (en, {lang}): {wrong}"
    empty = [k for k, v in other.items() if not str(v).strip()]
    assert not empty, f"{lang}.yaml has empty texts: {empty}"


@pytest.mark.parametrize("lang", LANGS)
def test_every_training_field_has_a_label_and_help_in_the_file(lang):
    cat = i18n.catalog(lang)
    no_label = [f.name for f in _form_fields() if not str(cat.get(f"param.{f.name}", "")).strip()]
    no_help = [f.name for f in _form_fields() if not str(cat.get(f"param_help.{f.name}", "")).strip()]
    assert not no_label, f"{lang}.yaml: no param.<field> label for {no_label}"
    assert not no_help, f"{lang}.yaml: no param_help.<field> text for {no_help}"


def test_english_help_is_the_engines_help():
    """The English help in en.yaml is what `tunestudio train --help` says: change both together."""
    en = i18n.catalog("en")
    differ = {f.name: (en.get(f"param_help.{f.name}"), f.metadata["help"])
              for f in _form_fields() if en.get(f"param_help.{f.name}") != f.metadata["help"]}
    assert not differ, f"en.yaml param_help differs from RunConfig's help (file, engine): {differ}"


def test_training_tab_takes_labels_and_help_from_the_files():
    tab = pytest.importorskip("tunestudio.webui.tabs.training.form")   # the form tab_training.py lays out
    assert set(tab.PICKED) == set(PICKED)
    for f in _form_fields():
        for lang in ("en", "tet"):
            assert tab._label(lang, f.name) == i18n.t(lang, f"param.{f.name}")
            assert tab._help(lang, f) == i18n.t(lang, f"param_help.{f.name}")
    # The Tetum texts the browser test looks for.
    assert tab._label("tet", "epochs") == "Épokas"
    assert tab._label("tet", "lr") == "Taxa aprendizajen"
    assert i18n.t("tet", "training.start") == "Hahu Treinamentu"


def test_every_group_heading_is_translated():
    from tunestudio.webui.tabs.training.groups import layout

    groups = set(layout())
    for lang in LANGS:
        cat = i18n.catalog(lang)
        assert all(f"training.group.{g}" in cat for g in groups), (lang, groups)


def test_the_code_asks_only_for_keys_that_exist():
    """Every literal key the web UI passes to t() or Texts.bind is in en.yaml (else the UI shows the key)."""
    en = i18n.catalog("en")
    tops = {k.split(".")[0] for k in en if "." in k}
    key = re.compile(r"""["']((?:%s)\.[a-z0-9_]+(?:\.[a-z0-9_]+)*)["']""" % "|".join(map(re.escape, sorted(tops))))
    missing = {}
    for path in sorted(WEBUI.rglob("*.py")):
        for k in key.findall(path.read_text(encoding="utf-8")):
            if k not in en:
                missing.setdefault(path.name, []).append(k)
    assert not missing, missing


@pytest.fixture
def scratch_locales(tmp_path, monkeypatch):
    """i18n reading its files from a scratch copy of locales/ (the package folder stays untouched)."""
    folder = tmp_path / "locales"
    shutil.copytree(LOCALES, folder)
    monkeypatch.setattr(i18n, "resources", types.SimpleNamespace(files=lambda package: tmp_path))
    i18n.catalog.cache_clear()
    yield folder
    monkeypatch.undo()
    i18n.catalog.cache_clear()


def test_a_new_language_is_one_file_and_falls_back_to_english(scratch_locales):
    (scratch_locales / "xx.yaml").write_text("_name: Testish\ntraining:\n  start: Go go go\n", encoding="utf-8")
    assert ("Testish", "xx") in i18n.languages()
    assert i18n.t("xx", "training.start") == "Go go go"
    # Everything else in English, placeholders filled in; unknown keys show as themselves.
    assert i18n.t("xx", "training.stop") == i18n.t("en", "training.stop") == "Stop"
    assert i18n.t("xx", "training.started", job="j1") == "Started job `j1`."
    assert i18n.t("xx", "param.lr") == "Learning rate"
    assert i18n.t("xx", "no.such.key") == "no.such.key"
    assert i18n.has("xx", "training.stop") and not i18n.has("xx", "no.such.key")
    # Unknown language code: all English.
    assert i18n.t("zz", "training.start") == "Start Training"


def test_switching_language_updates_every_bound_text():
    texts = i18n.Texts()
    a, b = object(), object()
    texts.bind(a, label="training.start")
    texts.bind(b, label=lambda lang: i18n.t(lang, "param.epochs"))
    texts.bind(a, info="training.stop")  # merged into a's one update
    pytest.importorskip("gradio")
    [(tab, components, updates)] = texts.groups()   # all bound outside the tabs: one group
    assert tab is None and components == [a, b]
    assert texts.initial(label="training.start") == {"label": "Start Training"}
    ups = updates("tet")
    assert ups[0]["label"] == "Hahu Treinamentu" and ups[0]["info"] == "Para"
    assert ups[1]["label"] == "Épokas"


def test_statuses_are_in_one_language():
    """A run status in Tetum carries no English copy ("remata ona (completed)" once did): the
    walkthrough compares what is shown with the registry through the locale files, not English."""
    for lang in [c for c in LANGS if c != i18n.DEFAULT]:
        for state in ("starting", "running", "completed", "stopped", "failed", "queued"):
            shown, english = i18n.t(lang, f"training.state.{state}"), i18n.t("en", f"training.state.{state}")
            assert english.lower() not in shown.lower(), (lang, state, shown)


def test_gradio_own_texts_are_gradios_english_and_translated():
    """en.yaml's `gradio:` section is Gradio's own English (else the page script matches nothing
    after a Gradio upgrade), and Tetum translates the upload box's words."""
    from tunestudio.webui.i18n import gradio_locale

    core = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in
                     (Path(pytest.importorskip("gradio").__file__).parent / "templates" / "frontend" / "assets").glob("core-*.js"))
    for key, text in gradio_locale._flat(gradio_locale.translations("en")).items():
        leaf = key.split(".")[-1]
        assert f"{leaf}:`{text}`" in core, f"Gradio's frontend has no {key} = {text!r}"
    tet = gradio_locale.phrases()["tet"]
    for english in ("Drop File Here", "Click to Upload", "or"):
        assert tet[english] and tet[english] != english
    html = gradio_locale.head_html()
    assert html.startswith("<script>") and "Klik atu haruka" in html and "MutationObserver" in html


def test_engine_warnings_are_worded_in_the_ui_language(tmp_path):
    """A run's warning event (as train/events.py writes it) is said in the UI language from its
    code and fields; a code without a text, or an event missing a field, keeps the engine's words."""
    from tunestudio.core.run_progress import summarize
    from tunestudio.train.events import EventLog

    log = EventLog(tmp_path, enabled=True)
    log.warn("no_change", "the training loss barely moved (2.0000 -> 1.9990): try a higher --lr", first="2.0000", last="1.9990")
    log.warn("truncated", "3 of 10 training rows (30%) lose answer tokens at --max-length 64; first: row 2",
             split="training", count=3, rows=10, share="30%", max_length=64, dropped=0, first="row 2")
    log.warn("padding_free", "padded batches: the model mixes packed rows")
    log.warn("overfitting", "overfitting: validation loss rose ...")          # an older run: no fields
    from tunestudio.data.formats.problems import Problem
    w = Problem("chat.jsonl", 4, "the turns after the last assistant reply are not trained on", "turns_after_answer").as_warning()
    log.warn(w["code"], w["message"], **w["fields"])                          # a data problem, as sft.load_data gives it
    log.close()
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    said = {lang: [i18n.engine_warning(lang, e) for e in summarize(events)["warning_events"]] for lang in ("en", "tet")}
    assert said["en"][0].startswith("the training loss barely moved (2.0000 -> 1.9990)") and "“Learning rate”" in said["en"][0]
    assert said["tet"][0].startswith("perda treinamentu kuaze la muda (2.0000 -> 1.9990)")
    assert said["tet"][1].startswith("liña treinamentu 3 husi 10 (30%)") and "row 2" in said["tet"][1]
    assert said["tet"][2] == said["en"][2] == "padded batches: the model mixes packed rows"   # library words, as they are
    assert said["tet"][3] == "overfitting: validation loss rose ..."
    assert said["en"][4] == "chat.jsonl:4: the turns after the last assistant reply are not trained on"
    assert said["tet"][4] == "chat.jsonl:4: turnu sira depois resposta assistant ikus la treina"
    assert i18n.engine_warning("tet", "ignored when --max-steps is set") == i18n.ui_flags("tet", "ignored when --max-steps is set")


def test_evaluation_stopping_warning_is_worded_in_the_ui_language():
    """run_eval's "stopped on its own" warning, from its parts (what Evaluate shows)."""
    part = {"code": "eval_stopping", "side": "fine-tuned", "share": "0%", "max_new_tokens": 32,
            "message": "fine-tuned: the model stopped on its own in only 0% of answers ..."}
    tet, en = i18n.engine_warning("tet", part), i18n.engine_warning("en", part)
    assert "modelu para rasik de'it iha 0% husi resposta" in tet and "max_new_tokens = 32" in tet
    assert en.startswith("fine-tuned: the model stopped on its own in only 0% of answers (the rest ran to max_new_tokens = 32)")
    # the base model's is worded for a base model: it was never trained on these answers
    from tunestudio.evaluate.run_eval import stopping_warning

    base = stopping_warning([False] * 4, 32, base=True)
    assert "train longer" not in base and "not trained on this data" in base
    part = {"code": "eval_stopping_base", "side": "base", "share": "0%", "ran_on": "100%", "max_new_tokens": 32,
            "message": base}
    assert i18n.engine_warning("en", part) == base and "modelu baze" in i18n.engine_warning("tet", part)


# ---- the engine's coded messages: every code has a text in every language, with its fields ----

ENGINE = Path(i18n.__file__).parents[2]
CODED = {"Problem": 3, "CodedError": 1, "CodedText": 1, "RowError": 1, "ToolError": 1, "ContentError": 1,
         "_Bad": 1, "_place": 0, "UserError": 1}   # constructor -> the position of its code argument
OPTIONAL: set = set()   # every constructor gives a code (a UserError too: the UI words it in its language)


def _coded_calls():
    """(file:line, code, the field names given or None when not literal) of every call in the
    engine that makes a coded message; code None: the call gives none."""
    import ast

    for path in sorted(ENGINE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in CODED or any(isinstance(a, ast.Starred) for a in node.args) or \
                    any(k.arg is None for k in node.keywords):
                continue   # Problem(**p): rebuilt from a stored one
            where = f"{path.relative_to(ENGINE)}:{node.lineno}"
            pos = CODED[name]
            arg = node.args[pos] if len(node.args) > pos else next((k.value for k in node.keywords if k.arg == "code"), None)
            if name == "Problem":
                given = node.args[4] if len(node.args) > 4 else None
                fields = {k.value for k in given.keys} if isinstance(given, ast.Dict) else (set() if given is None else None)
            else:
                fields = {k.arg for k in node.keywords if k.arg != "code"}
            codes = [arg.value] if isinstance(arg, ast.Constant) else \
                [b.value for b in (arg.body, arg.orelse) if isinstance(b, ast.Constant)] if isinstance(arg, ast.IfExp) else \
                [f"empty_{k}_split" for k in ("val", "test")] if isinstance(arg, ast.JoinedStr) else [None]
            for code in codes:
                if code is None and name in OPTIONAL:
                    continue
                yield where, code, fields


def test_every_engine_message_has_a_code_and_a_text_with_its_fields():
    """Each data problem, tool-call error and template note the engine makes carries a code whose
    `engine.<code>` text exists in every language and needs no field the engine does not give."""
    calls = list(_coded_calls())
    assert len(calls) >= 90, len(calls)   # the scan found the engine's messages
    uncoded = [where for where, code, _ in calls if code is None]
    assert not uncoded, f"messages without a code (the UI can only show them in English): {uncoded}"
    for lang in LANGS:
        cat = i18n.catalog(lang)
        missing = sorted({code for _, code, _ in calls if f"engine.{code}" not in cat})
        assert not missing, f"{lang}.yaml has no engine.<code> text for {missing}"
    en = i18n.catalog("en")
    lacking = {where: (code, sorted(set(_placeholders(en[f"engine.{code}"])) - fields))
               for where, code, fields in calls
               if fields is not None and set(_placeholders(en[f"engine.{code}"])) - fields}
    assert not lacking, f"texts needing fields the engine does not give (where: code, fields): {lacking}"


BAD_ROWS = [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
    {"messages": [{"role": "wizard", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
    '{"messages": [{"role": "user", "content": "hi"}]',
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"function": {"name": "f", "arguments": "{bad"}}]}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"function": {"name": "g", "arguments": {}}}]}], "tools": [{"name": "f"}]},
    {"messages": "nope"}, {"messages": 7},
    {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "audio"}]}, {"role": "assistant", "content": "x"}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "more"}]},
    {"messages": [{"role": "assistant", "content": "a"}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}, {"role": "assistant", "content": "a"}]},
    {"messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "a"}]},
    ["not", "an", "object"],
    {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "<tool_call>\n{bad json\n</tool_call>"}]},
]


def test_data_problems_are_worded_in_the_ui_language(workspace):
    """What Check lists for a file of broken rows (JSON, roles, tool calls, media, duplicates), and
    what the Training tab's pre-start check lists, carry no English in Tetum (tests/lang_check.py):
    file and line stay as they are, a library's own words only as a quoted detail."""
    from lang_check import wrong_language

    from tunestudio.config.run_config import RunConfig
    from tunestudio.core.workspace import Workspace
    from tunestudio.data.quality.check import check_dataset
    from tunestudio.webui.common.context import msg, problems, say
    from tunestudio.webui.tabs.datasets.tab import problems_frame
    from tunestudio.webui.tabs.training.tab import precheck

    ws = Workspace(workspace)
    (ws.datasets_dir / "bad.jsonl").write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in BAD_ROWS) + "\n", encoding="utf-8")
    (ws.datasets_dir / "bad.csv").write_text("instruction,output\nq1,a1\nq2,a2,extra\n", encoding="utf-8")
    (ws.datasets_dir / "odd.csv").write_text("question,remark\nq1,a1\n", encoding="utf-8")
    (ws.datasets_dir / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "q", "chosen": "same", "rejected": "same"}, {"prompt": "q", "chosen": "a"},
        {"prompt": "q", "chosen": "good", "rejected": "bad"}]) + "\n", encoding="utf-8")
    report = check_dataset(ws, "bad.jsonl").to_json()
    codes = {p.get("code") for p in report["errors"] + report["warnings"]}
    assert {"unknown_role", "invalid_json", "empty_content", "tool_invalid_json", "call_undeclared",
            "messages_not_list", "messages_text", "media_only", "turns_after_answer", "duplicate_of", "no_user_turn",
            "result_without_call", "content_null", "row_not_object"} <= codes, codes
    (ws.datasets_dir / "xlam.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"query": "q", "tools": [{"name": "f", "parameters": {}}], "answers": [{"name": "g", "arguments": {}}]},
        {"query": "q", "tools": [{"name": "f", "parameters": {}}], "answers": ""}]) + "\n", encoding="utf-8")
    for name in ("bad.csv", "odd.csv", "xlam.jsonl"):
        more = check_dataset(ws, name).to_json()
        assert more["errors"] and all(p.get("code") for p in more["errors"]), more
        report["errors"] += more["errors"]
    frame = problems_frame("tet", report["errors"], report["warnings"])
    tet = "\n".join(frame.iloc[:, -1])
    assert "bad.jsonl" in frame.to_string() and "papél \"wizard\" la koñesidu iha mensajen 1" in tet
    assert "“Expecting ',' delimiter”" in tet   # the JSON parser's words, quoted after Tetum
    assert "bloku <tool_call> 1 iha mensajen 2 la'ós JSON válidu" in tet and "'answers' la iha tool call ida" in tet
    assert "konteúdu áudiu, imajen" in tet and "tool call 1 iha mensajen 2 bolu 'g'" in tet
    assert not wrong_language(tet, "tet", "en"), wrong_language(tet, "tet", "en")
    en = "\n".join(problems_frame("en", report["errors"], report["warnings"]).iloc[:, -1])
    assert "unknown role \"wizard\" in message 1" in en and not wrong_language(en, "en", "tet")
    # The Training tab's check before Start: SFT rows, and preference pairs for DPO.
    for cfg in (RunConfig(model="m", dataset="bad.jsonl"), RunConfig(model="m", dataset="pairs.jsonl", objective="dpo")):
        n, first = precheck(ws, cfg)
        shown = say("tet", msg("training.precheck_failed", n=n, rows=problems(first, n)))
        assert f"{cfg.dataset}:" in shown and not wrong_language(shown, "tet", "en"), shown
    assert "'chosen' no 'rejected' mak resposta hanesan" in shown
    # GRPO prompts: the loader stops at the first bad row; the check lists it the same way.
    (ws.datasets_dir / "prompts.jsonl").write_text('{"prompt": "q1"}\n{"prompt": ""}\n', encoding="utf-8")
    n, first = precheck(ws, RunConfig(model="m", dataset="prompts.jsonl", objective="grpo", rewards="exact_match"))
    assert (n, first[0]["line"], first[0]["code"]) == (1, 2, "prompt_missing")
    shown = say("tet", msg("training.precheck_failed", n=n, rows=problems(first, n)))
    assert "prompts.jsonl:2: 'prompt' la iha ka mamuk" in shown and not wrong_language(shown, "tet", "en"), shown
    # Clean's table of removed rows: the reason and its detail (the file's own problems, duplicates).
    from tunestudio.data.quality.clean import clean_dataset
    from tunestudio.webui.tabs.datasets.tab import removals_frame

    removed = [rm.to_dict() for r in clean_dataset(ws, "bad.jsonl") for rm in r.removals]
    assert {"clean_same_as", "invalid_json", "unknown_role"} <= {r.get("code") for r in removed}, removed
    tet = removals_frame("tet", removed).to_string()
    assert "hanesan liña 1" in tet and "duplikadu" in tet and not wrong_language(tet, "tet", "en"), tet


def test_a_problem_without_a_code_keeps_the_engines_words():
    """An older report (no code), or a text needing a field the problem lacks: the English message."""
    old = {"file": "a.jsonl", "line": 3, "message": "invalid JSON: Expecting value (column 1)"}
    assert i18n.engine_warning("tet", old) == old["message"]
    partial = {**old, "code": "invalid_json", "fields": {"detail": "Expecting value"}}   # no column
    assert i18n.engine_warning("tet", partial) == old["message"]
    whole = {**old, "code": "invalid_json", "fields": {"detail": "Expecting {value}", "column": 1}}
    assert i18n.engine_warning("tet", whole) == "JSON la válidu iha koluna 1: “Expecting {value}”"


def test_every_engine_text_filled_in_is_in_one_language():
    """Each engine.<code> text, its fields filled with numbers, carries no words of the other
    language (tests/lang_check.py): what Tetum shows for a data problem, an Evaluate or export
    warning, a memory tip, is Tetum around the values."""
    from lang_check import wrong_language

    en = i18n.catalog("en")
    codes = sorted(k[len("engine."):] for k in en if k.startswith("engine.") and not k.startswith("engine.word."))
    assert len(codes) > 120, len(codes)
    for lang, other in (("tet", "en"), ("en", "tet")):
        for code in codes:
            part = {"code": code, "message": "-", **{f: "7" for f in _placeholders(en[f"engine.{code}"])}}
            shown = i18n.engine_warning(lang, part)
            assert shown != "-" and not wrong_language(shown, lang, other), (lang, code, shown)


def test_evaluate_export_and_memory_warnings_are_worded_in_the_ui_language():
    """What Evaluate, the export check and the memory estimate make (CodedText: text with a code)
    is said in the UI language from its parts; the engine's English text is unchanged."""
    from lang_check import wrong_language
    from transformers import LlamaConfig

    from tunestudio.evaluate.guard import perplexity_summary
    from tunestudio.models import memory
    from tunestudio.ship import roundtrip
    from tunestudio.webui.tabs.runs.ship_panel import roundtrip_text

    warnings: list = []
    perplexity_summary("guard.jsonl", {"perplexity": 30.0}, {"perplexity": 10.0}, warnings)
    assert warnings == ["possible catastrophic forgetting: perplexity on the guard set guard.jsonl rose from 10 (base) "
                        "to 30 (fine-tuned), x3.00"]
    tet = i18n.engine_warning("tet", warnings[0])
    assert tet.startswith("karik modelu haluha") and "10 (baze) ba 30 (afina ona), x3.00" in tet

    cfg = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32)
    est = memory.estimate(cfg, method="full", batch_size=4, max_length=2048, precision="bf16")
    tips = memory.advice(est) + memory.advice(method="full", max_length=1024, grad_checkpointing=False, batch_size=8)
    assert "train an adapter instead: --method lora (saves about" in tips[0]   # the CLI's words, as before
    for tip in tips:
        shown = i18n.engine_warning("tet", tip)
        assert shown != str(tip) and not wrong_language(shown, "tet", "en"), shown
    assert i18n.engine_warning("tet", tips[0]).startswith("treina adaptadór ida: “Métodu” (--method) lora (poupa maizumenus")

    skipped = roundtrip._skipped(roundtrip.CodedText("run 'r1' has no chat rows in its test split to check the export "
                                                     "with", "roundtrip_no_chat_rows", run="r1"))
    assert "treinamentu 'r1' la iha liña konversa" in roundtrip_text("tet", skipped)
    checked = {"identical": 3, "rows": 4, "stopped": 0.5, "exact_match": 0.5, "reference_exact_match": 0.75, "seconds": 2,
               "warnings": ["THE MERGED EXPORT ANSWERS DIFFERENTLY ...", "the merged export stopped ..."],
               "warning_parts": [
                   {"code": "export_differs", "export": "merged", "differ": 1, "rows": 4, "exact": "0.50", "run_exact": "0.75",
                    "where": "t.jsonl:3", "run": "'a'", "answer": "'b'", "message": "THE MERGED EXPORT ANSWERS DIFFERENTLY ..."},
                   {"code": "export_stopping", "export": "merged", "share": "50%", "max_new_tokens": 32,
                    "message": "the merged export stopped ..."}]}
    tet = roundtrip_text("tet", checked)
    assert "esportasaun kahur ona responde la hanesan" in tet and "para rasik de'it iha 50%" in tet
    assert not wrong_language(tet, "tet", "en"), wrong_language(tet, "tet", "en")
    assert "the merged export stopped ..." in roundtrip_text("tet", {**checked, "warning_parts": []})   # an older check


def test_statistics_warnings_are_all_worded_in_the_ui_language(workspace):
    """Statistics on a file with a broken row and a duplicate: every warning the engine gives
    reaches the Datasets tab worded in the UI language (the tab words `warning_parts`), the
    skipped-problems line included, naming the Check button before the command line."""
    from lang_check import wrong_language

    from tunestudio.core.workspace import Workspace
    from tunestudio.data.quality.stats import stats_dataset
    from tunestudio.webui.i18n.texts import engine_warning

    ws = Workspace(workspace)
    rows = [json.dumps({"prompt": "q", "completion": "a"})] * 2 + ['{"prompt": "broken"',
                                                                  json.dumps({"prompt": "r", "completion": "b"})]
    (ws.datasets_dir / "mixed.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for only_skipped, name in ((False, "mixed.jsonl"), (True, "broken.jsonl")):
        if only_skipped:   # no other warning: the skipped line alone
            (ws.datasets_dir / name).write_text("\n".join(rows[2:]) + "\n", encoding="utf-8")
        s = stats_dataset(ws, name)
        assert len(s["warning_parts"]) == len(s["warnings"]), s["warnings"]
        en = [engine_warning("en", p) for p in s["warning_parts"]]
        tet = [engine_warning("tet", p) for p in s["warning_parts"]]
        assert en[0].startswith("1 problem(s) skipped: Check on the Datasets tab"), en
        assert "Verifika iha tab Dataset sira" in tet[0], tet
        assert not wrong_language("\n".join(tet), "tet", "en"), wrong_language("\n".join(tet), "tet", "en")
        assert not wrong_language("\n".join(en), "en", "tet")


def test_evaluate_split_names_are_in_the_ui_language():
    """The Evaluate tab's split picker and its result line name the split in the UI language
    ("test", "val", "train" were English words in a Tetum picker); the value stays the engine's word."""
    from lang_check import wrong_language

    from tunestudio.webui.tabs.evaluate.tables import split_choices, split_word

    assert split_choices("tet") == [("teste", "test"), ("validasaun", "val"), ("treinamentu", "train")]
    assert [v for _, v in split_choices("en")] == ["test", "val", "train"]
    line = i18n.t("tet", "evaluate.done", model="r1", n=10, split=split_word("tet", "test"), primary="F1")
    assert "parte teste" in line and not wrong_language(line, "tet", "en")
    assert split_word("tet", "custom") == "custom"   # a split the engine names otherwise stays as it is


def test_tetum_texts_hold_no_stray_english_words():
    """English words left inside Tetum sentences ("upload ida", "molok run hahu", "husi job")
    pass lang_check (a single word is no fragment) but a reader sees them: none of these words
    outside placeholders, `code` and flag mentions."""
    words = ("upload", "run", "runs", "job", "jobs", "the", "file", "and", "click", "folder", "step", "steps")
    found = []
    for key, text in i18n.catalog("tet").items():
        if key.startswith("gradio."):
            continue
        plain = re.sub(r"\{[^}]*\}|`[^`]*`|\([^)]*--[^)]*\)", "", str(text))
        found += [(key, w) for w in words if re.search(rf"(?<![\w\-/.]){w}(?![\w\-/.])", plain)]
    assert not found, found


def test_gradio_keys_it_shows_untranslated_are_worded_in_every_language():
    """Gradio's status tracker puts the raw key "common.complete" in the page (a screen-reader
    region) in any language: its dictionary lacks it. The page script words it in the UI language,
    English included; once a Gradio release has the key, MISSING should lose it."""
    from tunestudio.webui.i18n import gradio_locale

    assets = Path(pytest.importorskip("gradio").__file__).parent / "templates" / "frontend" / "assets"
    core = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in assets.glob("core-*.js"))
    words = gradio_locale.missing_texts()
    for key in gradio_locale.MISSING:
        section, leaf = key.split(".")
        found = re.search(rf"\b{section}:\{{([^{{}}]*)\}}", core)   # Gradio's English section, as the bundle holds it
        assert found and f"{leaf}:`" not in found.group(1), f"Gradio now translates {key}: drop it from MISSING"
        assert words["en"][key] == "Done" and words["tet"][key] == "Remata ona"
    html = gradio_locale.head_html()
    assert '"common.complete": "Remata ona"' in html and 'lang === "en") return' not in html
