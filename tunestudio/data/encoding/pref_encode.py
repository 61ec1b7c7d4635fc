"""Preference rows -> token ids, with the SFT rendering: the prompt and each answer go through the
model's chat template exactly as an SFT row (data/encoding/encode.py), so the answer tokens are the ones SFT
trains, ending with the template's turn end (or eos when the template has none).

Each pair becomes {"prompt_ids", "chosen_ids", "rejected_ids"} and each unpaired row
{"prompt_ids", "completion_ids", "label"}: the pre-tokenized shape TRL's DPO and KTO collators take,
so TRL never re-renders the text with its own idea of the template.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunestudio.data.chat.render import Refused
from tunestudio.data.encoding.encode import encode_rows, last_trained_span
from tunestudio.data.formats.load import Problem
from tunestudio.data.formats.records import Record
from tunestudio.data.preference import PrefRecord


@dataclass
class PrefEncoded:
    examples: list[dict]
    rows: int = 0
    truncated: list[str] = field(default_factory=list)     # "file:line" of rows that lost answer tokens
    dropped: list[str] = field(default_factory=list)       # rows whose prompt alone fills max_length
    errors: list[Problem] = field(default_factory=list)    # refused by the template, identical once cut

    @property
    def stats(self) -> dict:
        ex = self.examples
        answers = [len(e.get("chosen_ids", e.get("completion_ids", []))) for e in ex]
        return {"rows": self.rows, "examples": len(ex), "truncated": len(self.truncated),
                "dropped": len(self.dropped),
                "prompt_tokens_mean": round(sum(len(e["prompt_ids"]) for e in ex) / max(len(ex), 1), 1),
                "answer_tokens_mean": round(sum(answers) / max(len(ex), 1), 1)}



def _render(records: list[PrefRecord], answers: list[str], tokenizer, reasoning: str):
    chats = [Record(r.source, r.line, messages=r.prompt + [{"role": "assistant", "content": a}])
             for r, a in zip(records, answers)]
    return encode_rows(chats, tokenizer, False, reasoning)


def encode_prefs(records: list[PrefRecord], tokenizer, max_length: int, reasoning: str = "keep") -> PrefEncoded:
    """Pairs or unpaired rows as TRL's pre-tokenized examples, cut to `max_length` tokens (prompt +
    answer; the answer's end is what is cut). A pair whose answers are identical once cut is an
    error (it would teach nothing and hide a too-small --max-length)."""
    out = PrefEncoded([], rows=len(records))
    if not records:
        return out
    pairs = records[0].is_pair
    first = _render(records, [r.chosen if pairs else r.completion for r in records], tokenizer, reasoning)
    second = _render(records, [r.rejected for r in records], tokenizer, reasoning) if pairs else [None] * len(records)
    for r, a, b in zip(records, first, second):
        refused = next((x for x in (a, b) if isinstance(x, Refused)), None)
        if refused is not None:
            out.errors.append(Problem(r.source, r.line, f"the chat template refused this row: {refused.message}",
                                      "template_refused", {"detail": refused.message}))
            continue
        a_start, a_end = last_trained_span(a[1])
        if a_end == a_start:
            out.errors.append(Problem(r.source, r.line, "the chat template left the answer out of the rendered text",
                                      "template_dropped_answer"))
            continue
        start = a_start
        if pairs:
            b_start, b_end = last_trained_span(b[1])
            # the prompt is the tokens both renderings share before their answers
            start = min(a_start, b_start)
            while start and a[0][:start] != b[0][:start]:
                start -= 1
        prompt = list(a[0][:start])
        if len(prompt) >= max_length:
            out.dropped.append(r.where())
            continue
        room = max_length - len(prompt)
        answer = list(a[0][start:a_end])
        if not pairs:
            if len(answer) > room:
                out.truncated.append(r.where())
            out.examples.append({"prompt_ids": prompt, "completion_ids": answer[:room], "label": bool(r.label)})
            continue
        other = list(b[0][start:b_end])
        if len(answer) > room or len(other) > room:
            out.truncated.append(r.where())
        answer, other = answer[:room], other[:room]
        if answer == other:
            out.errors.append(Problem(r.source, r.line, f"chosen and rejected are identical once cut to --max-length "
                                      f"{max_length} tokens (the prompt takes {len(prompt)}): raise --max-length",
                                      "pref_identical_when_cut", {"max_length": max_length, "prompt": len(prompt)}))
            continue
        out.examples.append({"prompt_ids": prompt, "chosen_ids": answer, "rejected_ids": other})
    return out
