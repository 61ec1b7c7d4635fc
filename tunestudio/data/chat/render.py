"""A record -> the text the model reads and the character spans the loss is taken on.

Chat records go through the model's chat template; the spans are the assistant turns (their
reasoning where the template renders it, their content, and the end-of-turn token that follows, so
the model learns to stop), or the whole text with `train_on_prompt`. Plain text trains on
everything. Rows the template raises on become `Refused`, listed with the template's own message.
Tokenising these texts and spans is encode.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunestudio.core.errors import UserError
from tunestudio.data.chat import toolspan, turns
from tunestudio.data.formats.problems import listed
from tunestudio.data.formats.records import Record, unique_wheres

REFUSED = "the chat template refused this row"


@dataclass
class Refused:
    """A row the chat template raised on: not encoded, listed with the template's own message."""
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {REFUSED}: {self.message}"


def assistant_spans(tokenizer, messages: list[dict], full: str, reasoning: str = "keep",
                    tools: list | None = None) -> list[tuple[int, int]]:
    """Character spans of each assistant turn in `full`: its reasoning where the template renders
    it, its content, and the end-of-turn token after it (turns.answer_span); a template that renders
    a turn differently with other text in it falls back to finding the content itself."""
    style = turns.reasoning_style(tokenizer)
    try:  # only the template's own turn end closes an answer (not, say, the next turn's header)
        turn_end = turns.probe(tokenizer).turn_end
        specials = [turn_end] if turn_end else []
    except turns.TemplateRefused:
        specials = turns.special_strings(tokenizer)
    spans, searched_to = [], 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        span_of = toolspan.call_turn_span if m.get("tool_calls") else turns.answer_span
        span = span_of(tokenizer, messages, i, full, style, reasoning, specials, tools)
        if span is None or span[0] < searched_to:
            content = m["content"].strip()
            start = full.find(content, searched_to) if content else -1
            if start < 0:
                continue  # the template dropped this turn: nothing of it is in the text
            end = start + len(content)
            closing = turns.leading_turn_end(full[end:], specials)
            span = (start, end + len(closing) if closing else end)
        if m.get("weight") != 0:   # OpenAI's weight 0: context the model sees, not an answer it learns
            spans.append(span)
        searched_to = max(searched_to, span[1])
    return spans


def _needs_eos(tokenizer) -> bool:
    """A template that closes answers with no special token gives the model nothing to stop on:
    train the tokenizer's eos after each answer instead (what TRL and LLaMA-Factory do), so the
    fine-tuned model stops where generation and every runtime already stop."""
    try:
        return turns.probe(tokenizer).turn_end is None and bool(tokenizer.eos_token)
    except turns.TemplateRefused:
        return False


def _with_eos_after(full: str, spans: list, eos: str) -> tuple[str, list]:
    out, new_spans, at, shift = [], [], 0, 0
    for a, b in spans:
        out.append(full[at:b] + eos)
        new_spans.append((a + shift, b + shift + len(eos)))
        shift += len(eos)
        at = b
    out.append(full[at:])
    return "".join(out), new_spans


def render_record(record: Record, tokenizer, train_on_prompt: bool = False,
                  reasoning: str = "keep") -> tuple[str, list, bool]:
    """(text, spans to train on, is_chat). Plain text trains on everything.

    Raises turns.TemplateRefused when the chat template raises on the row."""
    if record.is_chat:
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("the tokenizer has no chat template: give it one with "
                            "template.ensure_chat_template(tokenizer) (the chatml or plain fallback)", "no_chat_template")
        style = turns.reasoning_style(tokenizer)
        full = turns.render(tokenizer, turns.template_messages(record.messages, style, reasoning), tools=record.tools)
        spans = assistant_spans(tokenizer, record.messages, full, reasoning, record.tools)
        if _needs_eos(tokenizer):
            full, spans = _with_eos_after(full, spans, tokenizer.eos_token)
        return full, [(0, len(full))] if train_on_prompt else spans, True
    text = record.text or ""
    return text, [(0, len(text))], False


def render_or_refuse(record: Record, tokenizer, train_on_prompt: bool, reasoning: str):
    """render_record's (text, spans, is_chat), or a Refused where the chat template raises on the row."""
    try:
        return render_record(record, tokenizer, train_on_prompt, reasoning)
    except turns.TemplateRefused as e:
        return Refused(record.where(), str(e))


def refused_rows(records: list[Record], tokenizer, reasoning: str = "keep") -> list[Refused]:
    """The chat rows the template raises on, found by rendering alone (no tokenising): for the rows
    training does not encode (the test split) and for evaluation."""
    style = turns.reasoning_style(tokenizer) if any(r.is_chat for r in records) else "inline"
    out = []
    for r, where in zip(records, unique_wheres(records)):
        if r.is_chat:
            try:
                turns.render(tokenizer, turns.template_messages(r.messages, style, reasoning), tools=r.tools)
            except turns.TemplateRefused as e:
                out.append(Refused(where, str(e)))
    return out


def refusal_fields(refused: list, limit: int = 10) -> dict:
    """refusal_error's message in parts, the fields of its UserError ("template_refused_rows"):
    {count, rows (each a coded file:line part, refused_part), option}. `refused`: Refused rows or
    their str()."""

    return {"count": len(refused), "rows": listed([refused_part(r) for r in refused[:limit]], len(refused)),
            "option": "skip_bad_rows"}


def refused_part(r: Refused | str) -> dict:
    """One refused row (a Refused, or its str() as the encoding workers send it back) as a coded
    part: engine.data_problem around engine.template_refused."""
    where, sep, detail = str(r).partition(f": {REFUSED}: ")
    if not sep:   # not a refusal's text: the message as it is
        return {"code": "data", "message": str(r)}
    return {"code": "data_problem", "message": str(r),
            "fields": {"where": where, "problem": {"code": "template_refused", "message": f"{REFUSED}: {detail}",
                                                   "detail": detail}}}


def refusal_error(refused: list, limit: int = 10) -> str:
    """One message listing the rows a chat template refused (first `limit`)."""
    listed = "\n".join(f"  {r}" for r in refused[:limit])
    more = f"\n  ... and {len(refused) - limit} more" if len(refused) > limit else ""
    return (f"the model's chat template refused {len(refused)} row(s):\n{listed}{more}\n"
            "fix those rows, or pass --skip-bad-rows to train without them")
