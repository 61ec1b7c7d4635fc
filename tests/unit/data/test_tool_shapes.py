"""Tool-use files in the shapes of other projects' datasets (glaive-function-calling-v2's raw text,
ToolACE's Python call syntax), and what a user is told about doubtful tool rows (scored by the CLI:
test_tool_shapes_cli.py)."""

from __future__ import annotations

import json

from data_helpers import WEATHER_TOOL, tool_call, write_jsonl

from tunestudio.data.formats.load import load_file
from tunestudio.data.quality.check import row_warnings
from tunestudio.data.tools.pycalls import python_calls

GLAIVE_SYSTEM = ("SYSTEM: You are a helpful assistant with access to the following functions. Use them if required -\n"
                 + json.dumps(WEATHER_TOOL["function"], indent=4))


def test_glaive_v2_raw_text_rows(tmp_path):
    """glaive's `chat` string: turns after USER:/ASSISTANT:/FUNCTION RESPONSE:, the call after
    <functioncall> with its arguments as a single-quoted JSON string, <|endoftext|> turn ends."""
    chat = ("USER: Weather in Zürich?\n\n\nASSISTANT: <functioncall> {\"name\": \"get_weather\", \"arguments\": "
            "'{\"city\": \"Zürich\", \"opts\": {\"units\": [\"c\"]}}'} <|endoftext|>\n\n\n"
            "FUNCTION RESPONSE: {\"temp\": 21}\n\n\nASSISTANT: It is 21 degrees. <|endoftext|>\n\n\n")
    plain = "USER: Hi\n\n\nASSISTANT: Hello! How can I help? <|endoftext|>\n\n\n"
    broken = "USER: Weather?\n\n\nASSISTANT: <functioncall> {name: get_weather} <|endoftext|>\n"
    r = load_file(write_jsonl(tmp_path / "glaive.jsonl", [
        {"system": GLAIVE_SYSTEM, "chat": chat},
        {"system": "SYSTEM: You are a helpful assistant, with no access to external functions.", "chat": plain},
        {"system": GLAIVE_SYSTEM, "chat": broken}]))
    assert r.format == "messages" and len(r.records) == 2
    first, second = r.records
    assert first.messages == [
        {"role": "system", "content": GLAIVE_SYSTEM[len("SYSTEM: "):]},
        {"role": "user", "content": "Weather in Zürich?"},
        {"role": "assistant", "content": "",
         "tool_calls": [tool_call("get_weather", {"city": "Zürich", "opts": {"units": ["c"]}})]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "assistant", "content": "It is 21 degrees."}]
    assert first.tools is None   # the function list stays in the system prompt, as glaive wrote it
    assert second.messages[1:] == [{"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "Hello! How can I help?"}]
    assert not r.warnings
    (err,) = r.errors
    assert (err.file, err.line) == ("glaive.jsonl", 3)
    assert err.message.startswith("'chat' is glaive's 'USER: ... ASSISTANT: ...' text, but the <functioncall> in "
                                  "message 2 is neither JSON nor")


def test_python_call_syntax():
    assert python_calls('[Market Trends API(trend_type="MARKET_INDEXES", country="us"), ping()]') == [
        {"name": "Market Trends API", "arguments": {"trend_type": "MARKET_INDEXES", "country": "us"}},
        {"name": "ping", "arguments": {}}]
    assert python_calls('[f(a=[1, {"x": true}], b=-2.5, c=None, d="x), y(")]') == [
        {"name": "f", "arguments": {"a": [1, {"x": True}], "b": -2.5, "c": None, "d": "x), y("}}]
    for text in ("[1] (see above)", "[f(1)]", "[f(a=1)] and more", "[f(a=b)]", "[f(**kw)]", "(f(a=1))"):
        assert python_calls(text) is None, text


def test_toolace_rows(tmp_path):
    """ToolACE: the tool list in the system prompt, calls as `[f(a=1)]` in an assistant turn,
    followed by a tool turn; the last turn alone is a call when its function is listed."""
    system = ("You are an expert in composing functions. Here is a list of functions in JSON format that you can "
              "invoke:\n" + json.dumps([WEATHER_TOOL["function"], {"name": "Stock API", "parameters": {}}]))
    rows = [{"system": system, "conversations": [
                {"from": "user", "value": "Weather in Lima, and AAPL?"},
                {"from": "assistant", "value": '[get_weather(city="Lima"), Stock API(symbol="AAPL", days=[1, 2])]'},
                {"from": "tool", "value": "[{\"name\": \"get_weather\", \"results\": {\"temp\": 20}}]"},
                {"from": "assistant", "value": "20 degrees in Lima."}]},
            {"system": system, "conversations": [
                {"from": "user", "value": "Weather in Oslo?"},
                {"from": "assistant", "value": '[get_weather(city="Oslo")]'}]},
            {"system": system, "conversations": [   # brackets in an answer: not a call of a listed function
                {"from": "user", "value": "Cite it"},
                {"from": "assistant", "value": '[see(page=2)]'}]}]
    r = load_file(write_jsonl(tmp_path / "toolace.json", rows))
    assert not r.errors and len(r.records) == 3
    a, b, c = r.records
    assert a.messages[2] == {"role": "assistant", "content": "", "tool_calls": [
        tool_call("get_weather", {"city": "Lima"}), tool_call("Stock API", {"symbol": "AAPL", "days": [1, 2]})]}
    assert b.messages[-1]["tool_calls"] == [tool_call("get_weather", {"city": "Oslo"})]
    assert c.messages[-1] == {"role": "assistant", "content": "[see(page=2)]"}


def test_result_after_a_text_turn_says_where_the_call_should_be(tmp_path):
    row = {"messages": [{"role": "user", "content": "Weather?"},
                        {"role": "assistant", "content": "get_weather Paris"},
                        {"role": "tool", "content": "21"},
                        {"role": "assistant", "content": "21 degrees"}]}
    (err,) = load_file(write_jsonl(tmp_path / "t.jsonl", [row])).errors
    assert err.line == 1 and err.message == (
        "message 3 is a tool result with no tool call before it: message 2 is plain text; a call is read from "
        "'tool_calls', a function_call turn, <tool_call> blocks or [f(a=1)] syntax")
    assert (err.code, err.fields) == ("result_after_text", {"n": 3, "m": 2})   # the hint in the UI's language too


def test_doubtful_tool_rows_are_kept_with_a_warning(tmp_path):
    calls = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
        {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lima\"}"}}]}
    untooled = {"messages": [{"role": "user", "content": "Oslo and Lima?"}, calls,
                             {"role": "tool", "tool_call_id": "a", "content": "1"},
                             {"role": "tool", "tool_call_id": "b", "content": "2"},
                             {"role": "assistant", "content": "1 and 2"}]}
    listed = {**untooled, "messages": [{"role": "system", "content": "You may call get_weather(city)."},
                                       *untooled["messages"]]}
    unanswered = {"tools": [WEATHER_TOOL],
                  "messages": [m for m in untooled["messages"] if m.get("tool_call_id") != "b"]}
    r = load_file(write_jsonl(tmp_path / "t.jsonl", [untooled, listed, unanswered]))
    assert not r.errors and len(r.records) == 3
    assert [(w.line, w.message) for w in r.warnings] == [
        (1, "the row calls get_weather but declares no tools (no 'tools' column, and not named in the system "
            "prompt): the model would learn to call functions it is never shown; add the functions as a 'tools' column"),
        (3, "message 2 calls with id(s) b that no tool result answers before the conversation goes on")]


def test_same_conversation_with_other_tools_is_not_a_duplicate(tmp_path):
    row = {"tools": [WEATHER_TOOL], "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    other = {**row, "tools": [{"name": "get_time", "parameters": {}}]}
    r = load_file(write_jsonl(tmp_path / "t.jsonl", [row, other, row]))
    assert [w.message for w in row_warnings(r.records)] == ["duplicate of t.jsonl:1"]


def test_sharegpt_call_written_as_a_python_dict(tmp_path):
    """Some ShareGPT conversions write a function_call turn as Python's repr of the call."""
    row = {"tools": json.dumps([WEATHER_TOOL["function"]]), "conversations": [
        {"from": "human", "value": "Weather in Lima?"},
        {"from": "function_call", "value": "{'name': 'get_weather', 'arguments': {'city': 'Lima', 'metric': True}}"},
        {"from": "observation", "value": "{'temp': 20}"},
        {"from": "gpt", "value": "20 degrees."}]}
    r = load_file(write_jsonl(tmp_path / "sg.jsonl", [row]))
    assert not r.errors and r.records[0].messages[1]["tool_calls"] == [
        tool_call("get_weather", {"city": "Lima", "metric": True})]


def test_parallel_results_are_put_in_the_order_of_their_calls(tmp_path):
    """Templates render results without ids: their order must be the calls' order."""
    calls = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
        {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lima\"}"}}]}
    row = {"tools": [WEATHER_TOOL], "messages": [{"role": "user", "content": "Oslo and Lima?"}, calls,
                                                 {"role": "tool", "tool_call_id": "b", "content": "Lima: 25"},
                                                 {"role": "tool", "tool_call_id": "a", "content": "Oslo: 3"},
                                                 {"role": "assistant", "content": "3 in Oslo, 25 in Lima"}]}
    no_ids = json.loads(json.dumps(row))
    for m in no_ids["messages"]:
        m.pop("tool_call_id", None)
    a, b = load_file(write_jsonl(tmp_path / "t.jsonl", [row, no_ids])).records
    assert [m["content"] for m in a.messages[2:4]] == ["Oslo: 3", "Lima: 25"]
    assert [m["tool_call_id"] for m in a.messages[2:4]] == ["a", "b"]
    assert [m["content"] for m in b.messages[2:4]] == ["Lima: 25", "Oslo: 3"]   # no ids: as written


def test_a_chat_string_not_in_glaive_shape_says_what_it_must_start_with(tmp_path):
    r = load_file(write_jsonl(tmp_path / "g.jsonl",
                              [{"system": "SYSTEM: x", "chat": "Hello\nUSER: hi\n\n\nASSISTANT: ok"}]))
    (err,) = r.errors
    assert (err.line, err.message) == (1, "wrong type: 'chat' must be a list of messages, found a string (a "
                                          "conversation written as text must start with 'USER:', as glaive's does)")
    assert (err.code, err.fields) == ("messages_text", {"col": "chat"})


def test_an_unreadable_glaive_call_is_worded_in_tetum_too(tmp_path):
    """The detail of a glaive row's problem was English inside the Tetum text ('in message')."""
    import json as _json

    from tunestudio.data.formats.load import load_file
    from tunestudio.webui.i18n.texts import engine_warning

    chat = "USER: Weather?\n\n\nASSISTANT: <functioncall> {name: get_weather} <|endoftext|>\n"
    p = tmp_path / "g.jsonl"
    p.write_text(_json.dumps({"system": GLAIVE_SYSTEM, "chat": chat}) + "\n")
    problem = load_file(p).errors[0].to_dict()
    assert problem["code"] == "glaive_chat" and problem["fields"]["detail"]["code"] == "glaive_call_unreadable"
    tet = engine_warning("tet", problem)
    assert "iha mensajen 2 la'ós JSON" in tet and "in message" not in tet, tet
