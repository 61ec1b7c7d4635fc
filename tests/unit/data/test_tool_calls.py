"""Tool calling: loading both shapes, checking, rendering, masking, parsing, scoring (through the CLI:
test_tool_calls_cli.py)."""

from __future__ import annotations

import json

import pytest
from data_helpers import OPENAI_TOOL_ROW, WEATHER_TOOL, tool_call, write_jsonl

from tunestudio.data.chat.template import CHATML_COMPACT_TOOLS, CHATML_GENERATION, PLAIN_GENERATION
from tunestudio.data.encoding.encode import IGNORE, encode, encode_rows
from tunestudio.data.formats.load import load_file
from tunestudio.data.formats.records import Record
from tunestudio.evaluate.tool_metrics import aggregate_tool_scores, score_tool_calls, tool_call_match, tool_name_match
from tunestudio.evaluate.toolparse import parse_tool_calls

BARE_WEATHER = WEATHER_TOOL["function"]   # ShareGPT / LLaMA-Factory write functions without the wrapper


# ---- loading -------------------------------------------------------------------------------------

def test_openai_shape_per_row_and_per_file_tools(tmp_path):
    second = {"messages": [{"role": "user", "content": "Rome?"},
                           {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather",
                                                                               "arguments": {"city": "Rome"}}}]}]}
    r = load_file(write_jsonl(tmp_path / "oa.jsonl", [OPENAI_TOOL_ROW, second]))
    assert not r.errors and r.format == "messages" and len(r.records) == 2
    a, b = r.records
    assert [m["role"] for m in a.messages] == ["user", "assistant", "tool", "assistant"]
    assert a.messages[1]["tool_calls"] == [tool_call("get_weather", {"city": "Paris"}, "call_1")]   # string arguments parsed
    assert a.messages[1]["content"] == "" and a.messages[2]["tool_call_id"] == "call_1"
    assert a.tools == [WEATHER_TOOL] and b.tools is None and "tools" not in a.meta
    assert b.reference_calls() == [tool_call("get_weather", {"city": "Rome"})]   # object arguments kept
    # per file: a JSON wrapper, and a JSON Lines line holding only the tools
    (tmp_path / "wrap.json").write_text(json.dumps({"tools": [WEATHER_TOOL], "data": [second, second]}))
    w = load_file(tmp_path / "wrap.json")
    assert not w.errors and len(w.records) == 2 and all(x.tools == [WEATHER_TOOL] for x in w.records)
    h = load_file(write_jsonl(tmp_path / "head.jsonl", [{"tools": [WEATHER_TOOL]}, second, second]))
    assert not h.errors and len(h.records) == 2 and [x.line for x in h.records] == [2, 3]
    assert all(x.tools == [WEATHER_TOOL] for x in h.records)


def test_sharegpt_shape_with_tools_as_json_string_or_list(tmp_path):
    conv = [{"from": "human", "value": "Weather in Rome and Oslo?"},
            {"from": "function_call", "value": json.dumps([{"name": "get_weather", "arguments": {"city": "Rome"}},
                                                           {"name": "get_weather", "arguments": {"city": "Oslo"}}])},
            {"from": "observation", "value": "{\"temp\": 25}"},
            {"from": "gpt", "value": "25 degrees in Rome."},
            {"from": "human", "value": "And Lima?"},
            {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Lima"}})}]
    rows = [{"conversations": conv, "tools": json.dumps([BARE_WEATHER])},
            {"conversations": conv[:4], "tools": [BARE_WEATHER], "system": "Be brief."}]
    r = load_file(write_jsonl(tmp_path / "sg.jsonl", rows))
    assert not r.errors, r.errors
    assert r.format == "sharegpt" and len(r.records) == 2
    a, b = r.records
    assert [m["role"] for m in a.messages] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert [m["role"] for m in b.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert len(a.messages[1]["tool_calls"]) == 2 and a.tools == [WEATHER_TOOL] == b.tools
    assert a.reference_calls() == [tool_call("get_weather", {"city": "Lima"})]
    assert a.reference() == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lima"}}\n</tool_call>'


HERMES_SYSTEM = ("You are a function calling AI model. You are provided with function signatures within "
                 "<tools></tools> XML tags. Here are the available tools: <tools> " + repr([WEATHER_TOOL]) + " </tools> "
                 "For each function call return a json object within <tool_call></tool_call> XML tags:\n"
                 "<tool_call>\n{'arguments': <args-dict>, 'name': <function-name>}\n</tool_call>")


def _hermes_row(call_text, result="<tool_response>\n{'name': 'get_weather', 'content': {'temp': 21}}\n</tool_response>\n"):
    """A row shaped like NousResearch's hermes-function-calling files: calls and results as text."""
    return {"id": "1", "conversations": [
        {"from": "system", "value": HERMES_SYSTEM},
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "gpt", "value": call_text},
        {"from": "tool", "value": result},
        {"from": "gpt", "value": "It is 21 degrees in Paris."}]}


@pytest.mark.parametrize("call_text", [
    "<tool_call>\n{'arguments': {'city': 'Paris'}, 'name': 'get_weather'}\n</tool_call>\n",   # hermes v1: Python repr
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',       # Qwen's JSON
])
def test_hermes_text_calls_are_read_as_calls(tmp_path, call_text):
    r = load_file(write_jsonl(tmp_path / "hermes.jsonl", [_hermes_row(call_text)]))
    assert not r.errors, r.errors
    (rec,) = r.records
    assert [m["role"] for m in rec.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert rec.messages[2] == {"role": "assistant", "content": "", "tool_calls": [tool_call("get_weather", {"city": "Paris"})]}
    # the wrapper goes (the template writes its own); the result's own text stays as the file has it
    assert rec.messages[3]["content"] == "{'name': 'get_weather', 'content': {'temp': 21}}"
    assert rec.tools is None and rec.messages[0]["content"] == HERMES_SYSTEM   # the tool list stays in the prompt


def test_hermes_text_call_with_words_and_a_broken_block(tmp_path):
    words = _hermes_row("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>")
    broken = _hermes_row("<tool_call>\n{'name': 'get_weather', 'arguments': {'city': Paris}}\n</tool_call>")
    prose = {"conversations": [{"from": "human", "value": "How do you call a tool?"},
                               {"from": "gpt", "value": "Write <tool_call> then the JSON."}]}   # no block: text
    r = load_file(write_jsonl(tmp_path / "mixed.jsonl", [words, broken, prose]))
    assert len(r.records) == 2 and len(r.errors) == 1
    assert r.records[0].messages[2]["content"] == "Let me check."
    assert r.records[1].messages[1] == {"role": "assistant", "content": "Write <tool_call> then the JSON."}
    assert (r.errors[0].file, r.errors[0].line) == ("mixed.jsonl", 2)
    assert "the <tool_call> block 1 of message 3 is not valid JSON" in r.errors[0].message


def test_xlam_shape_query_tools_answers(tmp_path):
    """Salesforce xLAM / APIGen rows: the request, the tools and the answering calls as JSON strings;
    parameters without a JSON Schema wrapper."""
    tools = [{"name": "get_weather", "description": "Weather now",
              "parameters": {"city": {"description": "The city", "type": "str", "default": "Paris"},
                             "type": {"description": "a parameter called type", "type": "str"}}}]
    rows = [{"id": 0, "query": "Weather in Rome and Oslo?", "tools": json.dumps(tools),
             "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Rome"}},
                                    {"name": "get_weather", "arguments": {"city": "Oslo"}}])},
            {"id": 1, "query": "Weather in Lima?", "tools": json.dumps(tools),
             "answers": json.dumps([{"name": "get_forecast", "arguments": {"city": "Lima"}}])},
            {"id": 2, "query": "Hi", "tools": json.dumps(tools), "answers": "[]"}]
    (tmp_path / "xlam.json").write_text(json.dumps(rows))
    r = load_file(tmp_path / "xlam.json")
    assert r.format == "alpaca" and len(r.records) == 1 and len(r.errors) == 2
    (rec,) = r.records
    assert rec.messages == [{"role": "user", "content": "Weather in Rome and Oslo?"},
                            {"role": "assistant", "content": "",
                             "tool_calls": [tool_call("get_weather", {"city": "Rome"}), tool_call("get_weather", {"city": "Oslo"})]}]
    assert rec.tools[0]["function"]["parameters"] == {"type": "object", "properties": tools[0]["parameters"]}
    assert rec.meta == {"id": 0}   # tools and answers are read, not carried as extra columns
    assert [e.message for e in r.errors] == [
        "'answers': tool call 1 of message 2 calls 'get_forecast', which the row does not declare (declared: get_weather)",
        "'answers' holds no tool call: the row has no answer to train on"]
    # SQuAD's "answers" (no tools column) is not read as calls
    (tmp_path / "squad.json").write_text(json.dumps([{"question": "Q?", "answers": {"text": ["A"]}}]))
    assert load_file(tmp_path / "squad.json").format is None


@pytest.mark.parametrize("message, expected", [
    ({"role": "assistant", "tool_calls": [{"function": {"name": "get_wether", "arguments": "{}"}}]},
     "calls 'get_wether', which the row does not declare (declared: get_weather)"),
    ({"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": "{\"city\": Paris}"}}]},
     "the arguments of tool call 1 of message 2 (get_weather) is not valid JSON: Expecting value (column 10)"),
    ({"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": "[1]"}}]},
     "must be a JSON object, found an array"),
    ({"role": "tool", "content": "21"}, "message 2 is a tool result with no tool call before it"),
])
def test_bad_tool_rows_name_file_and_line(tmp_path, message, expected):
    good = OPENAI_TOOL_ROW
    bad = {"tools": [WEATHER_TOOL], "messages": [{"role": "user", "content": "Paris?"}, message,
                                                {"role": "assistant", "content": "ok"}]}
    r = load_file(write_jsonl(tmp_path / "bad.jsonl", [good, bad]))
    assert len(r.records) == 1 and len(r.errors) == 1
    assert (r.errors[0].file, r.errors[0].line) == ("bad.jsonl", 2)
    assert expected in r.errors[0].message


# ---- rendering and masking -----------------------------------------------------------------------


def _trained_and_masked(tokenizer, record) -> tuple[str, str]:
    (row,) = encode_rows([record], tokenizer, False)
    ids, mask, text, offsets = row
    trained = "".join(text[a:b] for (a, b), m in zip(offsets, mask) if m)
    masked = "".join(text[a:b] for (a, b), m in zip(offsets, mask) if not m)
    return trained, masked


def _record(row) -> Record:
    (rec,) = load_file_rows([row])
    return rec


def load_file_rows(rows, tmp=[]):  # noqa: B006 - one temporary folder for the module
    import tempfile
    from pathlib import Path

    if not tmp:
        tmp.append(Path(tempfile.mkdtemp()))
    r = load_file(write_jsonl(tmp[0] / "rows.jsonl", rows))
    assert not r.errors, r.errors
    return list(r.records)


def test_chatml_fallback_tool_format_and_masking(tok):
    import copy

    tok = copy.deepcopy(tok)
    tok.chat_template = CHATML_GENERATION   # the demo model's own lists tools compactly (next test)
    rec = _record(OPENAI_TOOL_ROW)
    text = tok.apply_chat_template(rec.messages, tools=rec.tools, tokenize=False)
    assert text == (
        "<|im_start|>system\n# Tools\n<tools>\n" + json.dumps(WEATHER_TOOL) + "\n</tools>\n"
        "To call a function, answer with <tool_call>\n{\"name\": <function-name>, \"arguments\": "
        "<args-json-object>}\n</tool_call><|im_end|>\n"
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\nIt is 21 degrees in Paris.<|im_end|>\n")
    trained, masked = _trained_and_masked(tok, rec)
    assert trained == ("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
                       "<|im_end|>It is 21 degrees in Paris.<|im_end|>")
    assert "{\"temp\": 21}" in masked and "<tools>" in masked
    # a conversation without tools renders exactly as before tools existed
    plain = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    assert tok.apply_chat_template(plain, tokenize=False) == \
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"


def test_demo_template_lists_tools_compactly(tok):
    """The demo model's template is ChatML with each function written as a signature (its rows
    are ~100 tokens instead of ~220), not as the shape of its call (a call would repeat the list up
    to its value, and the model copied the list's "string"); calls, results and tool-less rows as in
    ChatML."""
    assert tok.chat_template == CHATML_COMPACT_TOOLS
    rec = _record(OPENAI_TOOL_ROW)
    text = tok.apply_chat_template(rec.messages, tools=rec.tools, tokenize=False)
    fallback = tok.apply_chat_template(rec.messages, tools=rec.tools, tokenize=False, chat_template=CHATML_GENERATION)
    assert text.startswith('<|im_start|>system\n# Tools\n<tools>\nget_weather(city: string)\n</tools><|im_end|>\n'
                           '<|im_start|>user\nWeather in Paris?')
    assert text.split("<|im_start|>user", 1)[1] == fallback.split("<|im_start|>user", 1)[1]
    bare = {"name": "ping"}   # no parameters, no wrapper
    assert "\nping()\n" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tools=[bare], tokenize=False)
    trained, _ = _trained_and_masked(tok, rec)
    assert trained.startswith('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}')

def test_labels_train_calls_and_mask_results(tok):
    enc = encode([_record(OPENAI_TOOL_ROW)], tok, 1024)
    ex = enc.examples[0]
    labels, ids = ex["labels"], ex["input_ids"]
    trained = tok.decode([i for i, l in zip(ids, labels) if l != IGNORE])
    assert '"get_weather"' in trained and '"Paris"' in trained and "temp" not in trained
    assert all(l == IGNORE for i, l in zip(ids, labels) if i in tok("temp", add_special_tokens=False)["input_ids"])


def test_plain_fallback_tool_format(tok):
    import copy

    t = copy.deepcopy(tok)
    t.chat_template = PLAIN_GENERATION
    rec = _record(OPENAI_TOOL_ROW)
    text = t.apply_chat_template(rec.messages, tools=rec.tools, tokenize=False)
    assert text.startswith("### Tools:\nTo call a function, answer with <tool_call>")
    assert ("### Assistant:\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
            "</tool_call><|im_end|>\n\n### Tool:\n{\"temp\": 21}\n\n") in text
    trained, masked = _trained_and_masked(t, rec)
    assert "<tool_call>" in trained and "temp" not in trained and "### Tool:" in masked


# Hand-written templates in the style of real families (never fetched ones).
HERMES_LIKE = (
    "{%- if tools -%}{{ '<|im_start|>system\\nTools:\\n' }}{%- for t in tools -%}{{ (t | tojson) + '\\n' }}"
    "{%- endfor -%}{{ '<|im_end|>\\n' }}{%- endif -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'tool' -%}{{ '<|im_start|>user\\n<tool_response>\\n' + m.content + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else -%}{{ '<|im_start|>' + m.role + '\\n' + (m.content or '') }}"
    "{%- for tc in m.tool_calls or [] -%}{{ '\\n<tool_call>\\n{\"name\": \"' + tc.function.name + '\", \"arguments\": ' }}"
    "{{ tc.function.arguments | tojson }}{{ '}\\n</tool_call>' }}{%- endfor -%}{{ '<|im_end|>\\n' }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}")
# Llama 3.1 style: a calling turn is the bare JSON call, its content not written at all.
BARE_JSON_LIKE = (
    "{%- if tools -%}{{ '<|im_start|>system\\n' }}{%- for t in tools -%}{{ t | tojson }}{%- endfor -%}{{ '<|im_end|>\\n' }}{%- endif -%}"
    "{%- for m in messages -%}{{ '<|im_start|>' + m.role + '\\n' }}"
    "{%- if m.tool_calls -%}{%- for tc in m.tool_calls -%}{{ '{\"name\": \"' + tc.function.name + '\", \"parameters\": ' }}"
    "{{ tc.function.arguments | tojson }}{{ '}' }}{%- endfor -%}{%- else -%}{{ m.content }}{%- endif -%}{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}")


@pytest.mark.parametrize("template, call_text", [
    # the template's own newline before a call (after an empty content) is the call's: trained
    (HERMES_LIKE, '\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'),
    (BARE_JSON_LIKE, '{"name": "get_weather", "parameters": {"city": "Paris"}}<|im_end|>'),
])
def test_model_template_with_tools(tok, template, call_text):
    import copy

    t = copy.deepcopy(tok)
    t.chat_template = template
    rec = _record(OPENAI_TOOL_ROW)
    trained, masked = _trained_and_masked(t, rec)
    assert trained == call_text + "It is 21 degrees in Paris.<|im_end|>"
    assert json.dumps(WEATHER_TOOL) in masked and "temp" in masked   # the tools reached the template (tools=)


# ---- parsing and scoring -------------------------------------------------------------------------

def test_parse_tool_calls_in_the_shapes_models_write():
    paris = tool_call("get_weather", {"city": "Paris"})
    assert parse_tool_calls('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>') == [paris]
    assert parse_tool_calls('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}') == [paris]  # cut at the turn end
    assert parse_tool_calls('{"name": "get_weather", "parameters": {"city": "Paris"}}') == [paris]
    assert parse_tool_calls('Sure. {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}') == [paris]
    assert parse_tool_calls('[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}]') == [paris]
    two = '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>'
    assert [c["function"]["name"] for c in parse_tool_calls(two)] == ["a", "b"]
    assert parse_tool_calls("It is sunny in Paris.") == []
    assert parse_tool_calls('<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>') == []


def test_tool_metrics_hand_computed():
    ref = [tool_call("convert", {"amount": 2, "from": "USD", "to": "EUR"})]
    assert tool_call_match([tool_call("convert", {"to": "EUR", "amount": 2.0, "from": "USD"})], ref) == 1.0  # order, 2 == 2.0
    assert tool_call_match([tool_call("convert", {"amount": 3, "from": "USD", "to": "EUR"})], ref) == 0.0
    assert tool_name_match([tool_call("convert", {"amount": 3, "from": "USD", "to": "EUR"})], ref) == 1.0
    assert tool_call_match([tool_call("f", {"on": True})], [tool_call("f", {"on": 1})]) == 0.0   # true is not 1
    assert tool_call_match([], ref) == 0.0 and tool_name_match([], ref) == 0.0
    both = [tool_call("a", {}), tool_call("b", {"x": 1})]
    assert tool_call_match(list(reversed(both)), both) == 1.0 and tool_call_match(both[:1], both) == 0.0
    # rows: a right call, a wrong argument, a wrong function, a row answered in words (no score)
    preds = ['<tool_call>{"name": "convert", "arguments": {"amount": 2, "from": "USD", "to": "EUR"}}</tool_call>',
             '{"name": "convert", "arguments": {"amount": 5, "from": "USD", "to": "EUR"}}',
             '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
             "Hello!"]
    scores = score_tool_calls(["tool_call_match", "tool_name_match"], preds, [ref, ref, ref, None])
    assert [s.get("tool_call_match") for s in scores] == [1.0, 0.0, 0.0, None]
    assert aggregate_tool_scores(["tool_call_match", "tool_name_match"], scores) == \
        {"tool_call_match": pytest.approx(1 / 3), "tool_name_match": pytest.approx(2 / 3)}


class _ScriptedModel:
    """A model that answers each prompt with a fixed text (looked up by a word of the prompt), through
    the real generation path: tokenised, decoded, parsed and scored."""

    def __init__(self, tokenizer, answers: dict[str, str]):
        import torch

        self.tok, self.answers, self.device, self.prompts = tokenizer, answers, torch.device("cpu"), []
        self.generation_config = None

    def generate(self, input_ids, attention_mask, **kw):
        import torch

        rows = []
        for ids in input_ids:
            prompt = self.tok.decode(ids, skip_special_tokens=False)
            self.prompts.append(prompt)
            answer = next(a for key, a in self.answers.items() if key in prompt.rsplit("<|im_start|>user", 1)[-1])
            rows.append(list(ids) + self.tok(answer, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id])
        width = max(map(len, rows))
        return torch.tensor([r + [self.tok.pad_token_id] * (width - len(r)) for r in rows])


def test_eval_scores_a_call(tok):
    from tunestudio.evaluate.run_eval import score_side
    from tunestudio.models.generate import Sampling

    rows = [{"tools": [WEATHER_TOOL], "messages": [{"role": "user", "content": f"Weather in {c}?"},
                                                   {"role": "assistant", "tool_calls": [tool_call("get_weather", {"city": c})]}]}
            for c in ("Paris", "Rome", "Oslo")]
    records = load_file_rows(rows)
    model = _ScriptedModel(tok, {
        "Paris": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        "Rome": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Milan"}}\n</tool_call>',
        "Oslo": "It is cold in Oslo."})
    side = score_side(model, tok, records, ["exact_match", "tool_call_match", "tool_name_match"], [],
                      Sampling(max_new_tokens=64), 2, None, False, "model")
    assert side["metrics"]["tool_call_match"] == pytest.approx(1 / 3)
    assert side["metrics"]["tool_name_match"] == pytest.approx(2 / 3)
    assert side["metrics"]["exact_match"] == pytest.approx(1 / 3)   # the reference is the call in the chatml format
    assert all("<tools>" in p and "get_weather(city: string)" in p for p in model.prompts)   # asked with the tools


def test_openai_weight_zero_turn_is_context_not_trained(tok, tmp_path):
    """OpenAI's fine-tuning files mark an assistant turn `"weight": 0` to keep it out of the loss."""
    row = {"messages": [{"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Old bad answer.", "weight": 0},
                        {"role": "user", "content": "Again?"},
                        {"role": "assistant", "content": "Good answer.", "weight": 1}]}
    trained, masked = _trained_and_masked(tok, _record(row))
    assert trained == "Good answer.<|im_end|>" and "Old bad answer." in masked
    bad = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x", "weight": 0.5}]}
    none = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x", "weight": 0}]}
    r = load_file(write_jsonl(tmp_path / "w.jsonl", [row, bad, none]))
    assert len(r.records) == 1 and [(e.line, e.message) for e in r.errors] == [
        (2, '"weight" of message 2 must be 0 or 1, found 0.5'),
        (3, 'every assistant turn has "weight": 0: nothing for the model to learn from')]
