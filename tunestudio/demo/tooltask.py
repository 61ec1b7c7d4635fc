"""The tool-use demo task: pick one of two functions from a request and fill in its arguments.

Rows are OpenAI-shaped (a `tools` list per row, an assistant turn with `tool_calls`, `tool`
results), so `demo-tools.jsonl` is also an example of the format. Every row ends with a call
(what evaluation scores with tool_call_match); about one row in seven first goes through a whole
round (call, tool result, an answer built from the result), so the file also shows, and training
masks, tool results. Held-out rows are new combinations of cities, amounts and currencies.
"""

from __future__ import annotations

import random

# Few values, each seen often: the model copies a value from the request (" Paris") into the call
# ("Paris", another token), a mapping learnt per value. Measured in the plain loop of
# scripts/measure_demo_tasks.py (batch 16, lr 1e-3, 2,000 rows): with 16 cities, 8 currencies and
# amounts 1-999 tool_call_match stayed at 0.01-0.05 (no amount was ever right); with 8 cities, 6
# currencies and a dozen round amounts the currencies and amounts are learnt within 4 epochs.
CITIES = ["Paris", "Rome", "Berlin", "Madrid", "Lisbon", "Vienna", "Oslo", "Dublin"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD"]
AMOUNTS = [5, 10, 15, 20, 25, 40, 50, 75, 100, 150, 200, 500]
SKIES = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy"]
# Openers and closers around a request: distinct requests for 2,000 rows with few values, and the
# value's place in the request varies (the model must find it, not count to it).
OPENERS = ["", "Hi! ", "Quick question: ", "Hello, ", "Please help. ", "Hey. ", "Good morning! ", "One thing: "]
CLOSERS = ["", " Thanks.", " Thank you!", " Cheers.", " Quickly, please."]

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
KINDS = (("weather", 0.5), ("convert", 0.5))


def _call(name: str, args: dict, k: int) -> dict:
    return {"id": f"call_{k}", "type": "function", "function": {"name": name, "arguments": args}}


def _requests(rng: random.Random, kind: str) -> list[tuple[str, str, dict]]:
    """Two requests of `kind` in the same words with different values, as (user text, function
    name, arguments): two cities; or the same amount from A to B and from B to A. Why pairs: the
    words around a value then never tell the value, so the model must copy it from the request;
    with one value per wording, a 4M model memorised wording -> city pairs from training rows
    and held-out tool_call_match went up and down between 0.69 and 0.96 with the seed and epochs."""
    opener, closer = rng.choice(OPENERS), rng.choice(CLOSERS)
    if kind == "weather":
        phrase = rng.choice(WEATHER)
        out = [(phrase.format(city=c), "get_weather", {"city": c}) for c in rng.sample(CITIES, 2)]
    elif kind == "convert":
        phrase, amount, pair = rng.choice(CONVERT), rng.choice(AMOUNTS), rng.sample(CURRENCIES, 2)
        out = [(phrase.format(amount=amount, src=src, dst=dst), "convert_currency",
                {"amount": amount, "from": src, "to": dst}) for src, dst in (pair, pair[::-1])]
    else:
        raise ValueError(f"unknown request kind {kind!r}")
    return [(opener + text + closer, name, args) for text, name, args in out]


def _round(rng: random.Random) -> list[dict]:
    """A finished weather round: request, call, result, answer from the result."""
    text, name, args = _requests(rng, "weather")[0]
    temp, sky = rng.randint(-5, 35), rng.choice(SKIES)
    return [{"role": "user", "content": text},
            {"role": "assistant", "content": None, "tool_calls": [_call(name, args, 1)]},
            {"role": "tool", "tool_call_id": "call_1", "content": f'{{"temp_c": {temp}, "sky": "{sky}"}}'},
            {"role": "assistant", "content": f"It is {temp} degrees and {sky} in {args['city']}."}]


def tools_task(n: int, seed: int) -> list[dict]:
    """`n` rows {"tools", "messages"} with distinct final requests, the kinds in KINDS' shares
    (`n` up to ~12,000: there are 6,400 distinct weather requests).

    Short on purpose: the tool list is in every row's prompt (rows are ~100 tokens with the demo
    model's compact tool list, ~220 with the ChatML fallback's JSON schemas), and the demo must
    train in minutes on a laptop CPU."""
    rng = random.Random(seed)
    rows, seen = [], set()
    kinds = [k for k, share in KINDS for _ in range(round(share * n))][:n]
    kinds += ["convert"] * (n - len(kinds))
    for attempt in range(50 * n):
        if len(rows) >= n:
            break
        pair = _requests(rng, kinds[len(rows)])
        if any(text in seen for text, _, _ in pair):   # distinct requests: a held-out row is never a training row
            continue
        for text, name, args in pair[:n - len(rows)]:
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
