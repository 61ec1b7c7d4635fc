"""The tool-use demo task: pick one of two functions from a request and fill in its arguments.

Rows are OpenAI-shaped (a `tools` list per row, an assistant turn with `tool_calls`, `tool`
results), so `demo-tools.jsonl` is also an example of the format. Every row ends with a call
(what evaluation scores with tool_call_match); about one row in seven first goes through a whole
round (call, tool result, an answer built from the result), so the file also shows, and training
masks, tool results. Held-out rows are new combinations of cities, amounts and currencies.
"""

from __future__ import annotations

import random

# Few cities, many phrasings. The model copies a city from the request (" Paris") into the call
# ("Paris", another token): a mapping learnt per city, so each city must come often. With 40 cities
# and 10 phrasings each city was seen ~7 times an epoch and the calls were not learnt (tool_call_match
# 0.0 after 3 epochs); distinct requests cap a city's rows at the number of phrasings.
CITIES = ["Paris", "Rome", "Berlin", "Madrid", "Lisbon", "Vienna", "Oslo", "Dublin",
          "Tokyo", "Seoul", "Lima", "Cairo", "Sydney", "Toronto", "Chicago", "London"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR"]
SKIES = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy"]

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
    {"type": "function", "function": {
        "name": "convert_currency",
        "parameters": {"type": "object", "properties": {
            "amount": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}}}},
]

WEATHER = ["What is the weather in {city}?", "Is it raining in {city} right now?",
           "How warm is it in {city} today?", "Weather for {city}, please.", "Tell me the weather in {city}.",
           "Is it sunny in {city}?", "What is it like outside in {city}?", "Do I need an umbrella in {city}?",
           "How cold is {city} right now?", "Check the weather in {city}.", "Will it snow in {city}?",
           "Is it windy in {city} today?", "What is the forecast for {city}?", "Weather in {city}?",
           "Should I take a coat in {city}?", "Is it hot in {city}?", "What is the temperature in {city}?",
           "Any rain in {city} today?", "Look up the weather in {city}.", "Is it cloudy in {city}?"]
CONVERT = ["How much is {amount} {src} in {dst}?", "Convert {amount} {src} to {dst}.",
           "Change {amount} {src} into {dst}, please.", "What is {amount} {src} worth in {dst}?"]
KINDS = (("weather", 0.3), ("convert", 0.7))   # weather has the fewer distinct requests (320)


def _call(name: str, args: dict, k: int) -> dict:
    return {"id": f"call_{k}", "type": "function", "function": {"name": name, "arguments": args}}


def _request(rng: random.Random, kind: str) -> tuple[str, str, dict]:
    """(user text, function name, arguments) for one request of `kind`."""
    if kind == "weather":
        city = rng.choice(CITIES)
        return rng.choice(WEATHER).format(city=city), "get_weather", {"city": city}
    if kind == "convert":
        src, dst = rng.sample(CURRENCIES, 2)
        amount = rng.randint(1, 999)
        return (rng.choice(CONVERT).format(amount=amount, src=src, dst=dst), "convert_currency",
                {"amount": amount, "from": src, "to": dst})
    raise ValueError(f"unknown request kind {kind!r}")


def _round(rng: random.Random) -> list[dict]:
    """A finished weather round: request, call, result, answer from the result."""
    text, name, args = _request(rng, "weather")
    temp, sky = rng.randint(-5, 35), rng.choice(SKIES)
    return [{"role": "user", "content": text},
            {"role": "assistant", "content": None, "tool_calls": [_call(name, args, 1)]},
            {"role": "tool", "tool_call_id": "call_1", "content": f'{{"temp_c": {temp}, "sky": "{sky}"}}'},
            {"role": "assistant", "content": f"It is {temp} degrees and {sky} in {args['city']}."}]


def tools_task(n: int, seed: int) -> list[dict]:
    """`n` rows {"tools", "messages"} with distinct final requests, the kinds in KINDS' shares
    (`n` up to ~1,060: there are 320 distinct weather requests).

    Short on purpose: the tool list is in every row's prompt (rows are ~130 tokens with the demo
    model's compact tool list, ~220 with the ChatML fallback's JSON schemas), and the demo must
    train in minutes on a laptop CPU."""
    rng = random.Random(seed)
    rows, seen = [], set()
    kinds = [k for k, share in KINDS for _ in range(round(share * n))][:n]
    kinds += ["convert"] * (n - len(kinds))
    for attempt in range(50 * n):
        if len(rows) == n:
            break
        kind = kinds[len(rows)]
        text, name, args = _request(rng, kind)
        if text in seen:   # distinct requests, so a held-out row is never a training row
            continue
        seen.add(text)
        history = _round(rng) if rng.random() < 0.15 else []
        k = 2 if history else 1
        rows.append({"tools": TOOLS, "messages": [
            *history, {"role": "user", "content": text},
            {"role": "assistant", "content": None, "tool_calls": [_call(name, args, k)]}]})
    if len(rows) < n:
        raise ValueError(f"only {len(rows)} distinct tool requests for {n} rows")
    rng.shuffle(rows)
    return rows


# Phrases of the fallback templates' tool prompt (template.py), for the demo tokenizer to learn.
PROMPT_PHRASES = [
    "# Tools\n<tools>\n", "\n</tools>\n",
    'To call a function, answer with <tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>',
    "<tool_response>\n", "\n</tool_response>",
]
