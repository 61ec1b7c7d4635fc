"""Decoding: greedy or sampled, batched for evaluation, streamed token by token for the UI.

A prompt is a conversation (list of {"role", "content"}) or a string (one user message); it is
rendered with the tokenizer's chat template plus the assistant header, exactly as the model saw
its training rows, so the model answers instead of continuing the user's text.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from tunestudio.core.errors import UserError
from tunestudio.data.chat import turns


@dataclass
class Sampling:
    max_new_tokens: int = 128
    temperature: float = 0.0          # 0 means greedy: the same answer every time
    top_p: float = 1.0
    top_k: int = 0                    # 0: no top-k cut
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)   # cut the answer at the first of these
    seed: int | None = None           # makes sampled output repeatable

    def validate(self) -> "Sampling":
        if self.max_new_tokens < 1:
            raise UserError(f"--max-new-tokens must be at least 1 (got {self.max_new_tokens})", "option_at_least",
                            option="max_new_tokens", value=self.max_new_tokens, least=1)
        if self.temperature < 0:
            raise UserError(f"--temperature must be 0 (greedy) or more (got {self.temperature})", "option_not_negative",
                            option="temperature", value=self.temperature)
        if not 0 < self.top_p <= 1:
            raise UserError(f"--top-p must be in (0, 1] (got {self.top_p})", "option_top_p",
                            option="top_p", value=self.top_p)
        if self.top_k < 0:
            raise UserError(f"--top-k must be 0 (off) or more (got {self.top_k})", "option_not_negative",
                            option="top_k", value=self.top_k)
        if self.repetition_penalty <= 0:
            raise UserError(f"--repetition-penalty must be above 0 (got {self.repetition_penalty})", "option_above_zero",
                            option="repetition_penalty", value=self.repetition_penalty)
        self.stop = [s for s in (self.stop or []) if s]
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def generate_kwargs(self, tokenizer) -> dict:
        kw = {"max_new_tokens": self.max_new_tokens, "pad_token_id": tokenizer.pad_token_id,
              "repetition_penalty": self.repetition_penalty}
        if self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or None)
        else:
            # explicit, so a model's generation_config asking for sampling cannot make eval random
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if self.stop:
            kw.update(stop_strings=list(self.stop), tokenizer=tokenizer)  # stop early, cut after
        return kw


def sampling_from(**kw) -> Sampling:
    """A Sampling from keyword arguments, ignoring None (unset CLI flags keep the defaults)."""
    return Sampling(**{k: v for k, v in kw.items() if v is not None}).validate()


def render(tokenizer, prompt, system: str | None = None, template: bool = True, mode: str = "training",
           reasoning: bool = False, tools: list | None = None) -> str:
    """The exact text the model is given. With the chat template, `mode` "training" asks with what
    training put before an answer (turns.training_prompt: the model is asked as it was taught),
    "template" with the template's own generation prompt; `reasoning` opens the reasoning block
    for a model trained to think first; `tools` are the functions the model may call."""
    if not template:
        return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system and not (messages and messages[0]["role"] == "system"):
        messages = [{"role": "system", "content": system}, *messages]
    return turns.generation_prompt(tokenizer, messages, mode, reasoning, tools)


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """`text` up to the first stop string (which is dropped); True when one was found."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[:min(cuts)], True) if cuts else (text, False)


def _new_token_count(row, eos_ids: set, pad_id) -> tuple[int, bool]:
    """(tokens a row really generated, whether it ended on a stop token): up to and including its
    first stop token; the rest is padding."""
    n = 0
    for t in row.tolist():
        n += 1
        if t in eos_ids:
            return n, True
    # no eos: trailing pads (when pad differs from eos) are not generated tokens
    while n and pad_id is not None and row[n - 1].item() == pad_id:
        n -= 1
    return n, False


def stop_kwargs(model, tokenizer, sampling: Sampling) -> dict:
    """generate() options that stop on the template's turn end as well as eos (turns.py): the ids,
    and as text a turn end that is several tokens or a user's stop strings."""
    kw = sampling.generate_kwargs(tokenizer)
    kw["eos_token_id"] = turns.stop_token_ids(tokenizer, model)
    strings = list(dict.fromkeys([*sampling.stop, *turns.stop_strings(tokenizer)]))
    if strings:
        kw.update(stop_strings=strings, tokenizer=tokenizer)
    return kw


def _turn_end(tokenizer) -> str | None:
    try:
        return turns.probe(tokenizer).turn_end
    except turns.TemplateRefused:
        return None


@dataclass
class Generated:
    texts: list[str]          # answers, in prompt order, cut at stop strings and stripped
    stopped: list[bool]       # ended on a stop token/string before max_new_tokens
    tokens: int               # new tokens generated, all prompts together
    seconds: float


def generate_timed(model, tokenizer, prompts: list, sampling: Sampling | None = None, batch_size: int = 8,
                   system: str | None = None, template: bool = True,
                   progress: Callable[[int], None] | None = None, mode: str = "training",
                   reasoning: bool | list[bool] = False, tools: list | None = None) -> Generated:
    """Answers for every prompt, batched with left padding.

    Prompts are sorted by length so each batch pads little; answers come back in input order.
    `reasoning` (one flag, or one per prompt) opens the reasoning block (see render); `tools`: one
    tool list (or None) per prompt.
    `progress(k)` is called after each batch with the number of prompts it finished.
    """
    import torch

    sampling = (sampling or Sampling()).validate()
    flags = reasoning if isinstance(reasoning, list) else [reasoning] * len(prompts)
    tools = tools if tools is not None else [None] * len(prompts)
    texts = [render(tokenizer, p, system, template, mode, r, t) for p, r, t in zip(prompts, flags, tools)]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str | None] = [None] * len(texts)
    stopped = [False] * len(texts)
    kwargs = stop_kwargs(model, tokenizer, sampling)
    eos = set(kwargs["eos_token_id"])
    strings = kwargs.get("stop_strings") or []
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    tokens, start = 0, time.perf_counter()
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the last position
    try:
        for b in range(0, len(order), max(1, batch_size)):
            idx = order[b:b + batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            with torch.no_grad():
                seqs = model.generate(**enc, **kwargs)
            new = seqs[:, enc["input_ids"].shape[1]:]  # (B, new_tokens)
            for row, i in zip(new, idx):
                n, ended = _new_token_count(row, eos, tokenizer.pad_token_id)
                tokens += n
                # the stop token is not part of the answer; a turn end that is several (non-special)
                # tokens survives decoding, and is cut as a stop string
                kept = row[:n - 1] if ended else row[:n]
                text, hit = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), strings)
                out[i] = text.strip()
                stopped[i] = ended or hit
            if progress:
                progress(len(idx))
    finally:
        tokenizer.padding_side = old_side
    return Generated(out, stopped, tokens, time.perf_counter() - start)


def generate(model, tokenizer, prompts: list, sampling: Sampling | None = None, batch_size: int = 8,
             system: str | None = None, template: bool = True, progress=None, **sampling_kw) -> list[str]:
    """Answers for every prompt (see generate_timed). Sampling options may also come as keywords:
    generate(m, t, ["Hi"], max_new_tokens=20, temperature=0.7)."""
    if sampling is None:
        sampling = sampling_from(**sampling_kw)
    return generate_timed(model, tokenizer, prompts, sampling, batch_size, system, template, progress).texts


def stream(model, tokenizer, prompt, sampling: Sampling | None = None, system: str | None = None,
           template: bool = True, mode: str = "training", reasoning: bool = False, **sampling_kw) -> Iterator[str]:
    """Yield the answer so far, growing token by token (for a chat window).

    generate() runs in a thread and feeds a TextIteratorStreamer; a stop string ends the text
    at once, and the thread stops at the same point through `stop_strings`.
    """
    import torch
    from transformers import TextIteratorStreamer

    if sampling is None:
        sampling = sampling_from(**sampling_kw)
    sampling.validate()
    enc = tokenizer([render(tokenizer, prompt, system, template, mode, reasoning)], return_tensors="pt",
                    add_special_tokens=False).to(model.device)
    kwargs = stop_kwargs(model, tokenizer, sampling)
    # a turn-end token not flagged special would be printed by the streamer: cut the text there too
    strings = [*(kwargs.get("stop_strings") or []), *[s for s in [_turn_end(tokenizer)] if s]]
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    errors: list[BaseException] = []

    def work():
        try:
            with torch.no_grad():
                model.generate(**enc, **kwargs, streamer=streamer)
        except BaseException as e:  # re-raised in the caller's thread below
            errors.append(e)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    text, stopped = "", False
    for piece in streamer:
        text += piece
        cut, stopped = cut_at_stop(text, strings)
        yield cut.lstrip()
        if stopped:
            break
    if stopped:  # read up to the end signal, so the thread finishes its last token cleanly
        for _ in streamer:
            pass
    thread.join()
    if errors:
        raise errors[0]
