"""Where an assistant turn that calls tools is, in a conversation's training rendering.

The loss covers such a turn's content and its calls (and the turn end after them), as templates
render the calls: Hermes/Qwen `<tool_call>{json}</tool_call>`, Llama 3.1's bare JSON, Mistral's
`[TOOL_CALLS]`... Tool results are never in it (they are not assistant turns). As in turns.py, the
span is read from probe renderings, not from per-family tables:

1. the turn with its content replaced by a sentinel, calls kept: the text before the sentinel is
   what precedes the turn; the same turn without its calls: the text after the sentinel is what
   follows the turn's calls (its closing and the rest of the chat). For templates that write the
   content before the calls (Qwen2.5, Qwen3, Hermes, both fallbacks) this is exact.
2. templates that do not write the content of a calling turn (Llama 3.1): the turn's calls are
   replaced by a sentinel call, and the span is where the two renderings differ, widened back to
   the end of the turn's header (the template's generation prompt, else the last special token
   before the difference) and on to the turn end.
"""

from __future__ import annotations

from tunestudio.data.chat import turns

CALL = "tsCallSentinel7"


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_suffix(a: str, b: str, limit: int) -> int:
    i = 0
    while i < limit and a[len(a) - 1 - i] == b[len(b) - 1 - i]:
        i += 1
    return i


def _exact(tokenizer, messages, i, full, style, reasoning, specials, tools):
    with_calls = turns.with_sentinels(messages, i, reasoning)
    a = turns.render(tokenizer, turns.template_messages(with_calls, style, reasoning), tools=tools)
    at = a.find(turns.ANSWER)
    if at < 0:
        return None
    r = a.find(turns.REASONING)
    prefix = a[:r if 0 <= r < at else at]
    without = list(with_calls)
    without[i] = {k: v for k, v in with_calls[i].items() if k != "tool_calls"}
    try:
        b = turns.render(tokenizer, turns.template_messages(without, style, reasoning), tools=tools)
    except turns.TemplateRefused:   # a template that checks results follow calls
        return None
    bt = b.find(turns.ANSWER)
    if bt < 0:
        return None
    suffix = b[bt + len(turns.ANSWER):]
    if not (full.startswith(prefix) and full.endswith(suffix) and len(prefix) + len(suffix) <= len(full)):
        return None
    end = len(full) - len(suffix)
    closing = turns.leading_turn_end(suffix, specials)
    end += len(closing) if closing else 0
    return (len(prefix), end) if end > len(prefix) else None


def _header(tokenizer, before, style, reasoning, tools) -> str:
    try:
        head = turns.render(tokenizer, turns.template_messages(before, style, reasoning), tools=tools)
        prompt = turns.render(tokenizer, turns.template_messages(before, style, reasoning), True, tools=tools)
    except turns.TemplateRefused:
        return ""
    return prompt[len(head):] if prompt.startswith(head) else ""


def _by_difference(tokenizer, messages, i, full, style, reasoning, specials, tools):
    probe = list(messages)
    probe[i] = {**messages[i], "tool_calls": [{"type": "function", "function": {"name": CALL, "arguments": {CALL: CALL}}}]}
    try:
        c = turns.render(tokenizer, turns.template_messages(probe, style, reasoning), tools=tools)
    except turns.TemplateRefused:
        return None
    lcp = _common_prefix(full, c)
    lcs = _common_suffix(full, c, min(len(full), len(c)) - lcp)
    start, end = lcp, len(full) - lcs
    if end <= start:
        return None
    # back to the end of the turn's header: the template's generation prompt after the turns before
    # it, else the last special token before the difference
    header = _header(tokenizer, messages[:i], style, reasoning, tools)
    at = full.rfind(header, 0, lcp) if header.strip() else -1
    marks = [full.rfind(t, 0, lcp) + len(t) for t in turns.special_strings(tokenizer) if full.rfind(t, 0, lcp) >= 0]
    if at >= 0:
        start = at + len(header)
    elif marks and max(marks) <= lcp:
        start = max(marks)
        while start < lcp and full[start] in " \n":
            start += 1
    else:
        start = full.rfind("\n", 0, lcp) + 1
    for tok in specials:   # on to the turn end that closes the calls
        at = full.find(tok, end)
        if at >= 0:
            end = at + len(tok)
            break
    return start, end


def call_turn_span(tokenizer, messages: list[dict], i: int, full: str, style: str, reasoning: str,
                   specials: list[str], tools: list | None) -> tuple[int, int] | None:
    """Character span in `full` of assistant turn `i` (which has `tool_calls`): content, calls and
    the turn end after them. None when neither probe finds it."""
    return (_exact(tokenizer, messages, i, full, style, reasoning, specials, tools)
            or _by_difference(tokenizer, messages, i, full, style, reasoning, specials, tools))
