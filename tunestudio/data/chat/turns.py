"""How a model's chat template frames an assistant turn, read from the template itself.

Real model families disagree on the details that decide whether a fine-tuned model answers well:
- the token that closes a turn is often not the tokenizer's eos (Qwen2.5 and Llama-3 *base* models:
  eos `<|endoftext|>` / `<|end_of_text|>`, turns end with `<|im_end|>` / `<|eot_id|>`), so a model
  that learnt to stop on the turn end rambles in any runtime that only stops on eos;
- what sits between the assistant header and the answer differs between training and generation
  (Qwen3 renders an empty `<think>\\n\\n</think>\\n\\n` before a trained answer but not in its
  generation prompt; DeepSeek-R1-distill adds `<think>\\n` to the generation prompt only);
- templates raise on rows they do not accept (Mistral: roles must alternate; Gemma: no system).

Everything here is found by rendering probe conversations in which the answer (and its reasoning)
are replaced by sentinel words, then reading the text around the sentinels: no per-family tables.
The prompt a model is asked with at inference is exactly the text that precedes the answer in the
training rendering (`training_prompt`), and the turn end becomes a stop token (`stop_token_ids`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from tunestudio.core.errors import CodedText, UserError
from tunestudio.core.timelimit import TimeLimitExceeded, time_limit

ANSWER = "tsAnswerSentinel7"     # plain words: templates may trim or split content, never these
REASONING = "tsReasoningSentinel7"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
GENERATION_PROMPTS = ("training", "template")


class TemplateRefused(UserError):
    """The chat template raised on a conversation (its `raise_exception`, or any rendering error)."""


# ---- rendering, with a time limit --------------------------------------------------------------

# A chat template is code from the model folder; jinja's sandbox stops it reaching Python, and caps
# one range() at 100,000, but not loops inside loops. A real template renders a conversation in
# milliseconds, so 10 s is only ever reached by a template that loops; $TUNESTUDIO_TEMPLATE_SECONDS
# raises it.
TEMPLATE_SECONDS = 10.0
TEMPLATE_SECONDS_ENV = "TUNESTUDIO_TEMPLATE_SECONDS"
_timed_out: set[str] = set()       # templates that ran past the limit: refused at once after that


def template_seconds() -> float:
    raw = os.environ.get(TEMPLATE_SECONDS_ENV, "").strip()
    if not raw:
        return TEMPLATE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise UserError(f"${TEMPLATE_SECONDS_ENV}={raw!r}: give a number of seconds above 0", "template_seconds_bad",
                        name=TEMPLATE_SECONDS_ENV, value=raw)
    return seconds


def _template_name(tokenizer) -> str:
    return str(getattr(tokenizer, "name_or_path", "") or "the model")


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False, tools: list | None = None) -> str:
    """`apply_chat_template` as text (`tools`: the functions the chat may call); any failure of the
    template becomes TemplateRefused with its own message (jinja2's TemplateError for `raise_exception`, TypeError/KeyError from templates
    that index fields a row lacks...), never a traceback; so does a template that renders longer
    than template_seconds() (code chat_template_timeout)."""
    seconds, key = template_seconds(), str(getattr(tokenizer, "chat_template", None))
    if key not in _timed_out:
        try:
            with time_limit(seconds):
                return tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                                     add_generation_prompt=add_generation_prompt)
        except TimeLimitExceeded:
            _timed_out.add(key)
        except Exception as e:  # noqa: BLE001 - a template is user-supplied code: any error is its verdict
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TemplateRefused(message[:300]) from None
    name = _template_name(tokenizer)
    raise TemplateRefused(f"the chat template of {name} ran for more than {seconds:g} s on one conversation (a loop "
                          f"that never ends?) and was stopped: fix the template, or raise ${TEMPLATE_SECONDS_ENV}",
                          "chat_template_timeout", template=name, seconds=f"{seconds:g}")


# ---- reasoning: one field in our records, given to each template the way it takes it ----

def reasoning_style(tokenizer) -> str:
    """How the template takes an assistant's reasoning: "reasoning_content" or "reasoning" (a message
    field, as Qwen3 and gpt-oss style templates read it) or "inline" (`<think>…</think>` before the
    content, which templates such as DeepSeek-R1's strip themselves where they do not render it)."""
    source = getattr(tokenizer, "chat_template", None) or ""
    if not isinstance(source, str):
        source = str(source)
    if "reasoning_content" in source:
        return "reasoning_content"
    if re.search(r"message\.reasoning\b|\[['\"]reasoning['\"]\]", source):
        return "reasoning"
    return "inline"


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a text that may start with a `<think>…</think>` block.

    Generated text may lack the opening tag (the prompt ended with it). An unclosed block is all
    reasoning and no answer (the model ran out of tokens while thinking)."""
    stripped = text.lstrip()
    if THINK_CLOSE in text and (stripped.startswith(THINK_OPEN) or THINK_OPEN not in text.split(THINK_CLOSE)[0]):
        head, _, tail = text.partition(THINK_CLOSE)
        return head.replace(THINK_OPEN, "", 1).strip(), tail.strip()
    if stripped.startswith(THINK_OPEN):
        return stripped[len(THINK_OPEN):].strip(), ""
    return "", text


def template_messages(messages: list[dict], style: str, reasoning: str = "keep") -> list[dict]:
    """Our messages ({"role", "content", optional "reasoning"}) as the template takes them (tool
    calls, and a tool result's id and name, passed through as OpenAI's fields)."""
    out = []
    for m in messages:
        r = m.get("reasoning") if reasoning == "keep" else None
        extra = {k: m[k] for k in _TOOL_FIELDS if m.get(k)}
        if m["role"] != "assistant" or not r:
            out.append({"role": m["role"], "content": m["content"], **extra})
        elif style == "inline":
            out.append({"role": "assistant", "content": f"{THINK_OPEN}\n{r}\n{THINK_CLOSE}\n\n{m['content']}", **extra})
        else:
            out.append({"role": "assistant", "content": m["content"], style: r, **extra})
    return out


_TOOL_FIELDS = ("tool_calls", "tool_call_id", "name")


# ---- the probe ----

@dataclass
class TurnFormat:
    """What the template does around an assistant answer (see `probe`)."""
    turn_end: str | None             # text closing an assistant turn (e.g. "<|im_end|>"), None if none
    turn_end_ids: list[int]          # its token ids (one id for a real special token)
    stop_ids: list[int]              # ids generation stops on: the turn end (if one token) and eos
    stop_strings: list[str]          # a turn end that is not a single token: stopped on as text
    training_prompt: str             # the assistant header as training renders it, for a probe chat
    template_prompt: str | None      # the same from add_generation_prompt=True (None if it raised)
    reasoning_style: str
    notes: list[str] = field(default_factory=list)

    @property
    def prompts_differ(self) -> bool:
        return self.template_prompt is not None and self.template_prompt != self.training_prompt

    def to_dict(self) -> dict:
        return {"turn_end": self.turn_end, "stop_ids": self.stop_ids, "stop_strings": self.stop_strings,
                "training_prompt": self.training_prompt, "template_prompt": self.template_prompt,
                "prompts_differ": self.prompts_differ, "reasoning_style": self.reasoning_style,
                "notes": self.notes}


_PROBE_USER = [{"role": "user", "content": "Hello"}]
_cache: dict = {}


def special_strings(tokenizer) -> list[str]:
    """Special and added token texts, longest first (so no token is matched by its own prefix)."""
    toks = set(getattr(tokenizer, "all_special_tokens", []) or [])
    try:
        toks.update(tokenizer.get_added_vocab())
    except Exception:  # noqa: BLE001 - slow or exotic tokenizers may not list them
        pass
    toks.add(tokenizer.eos_token or "")
    return sorted((t for t in toks if t and t.strip()), key=len, reverse=True)


def leading_turn_end(suffix: str, specials: list[str]) -> str | None:
    """The special token that opens `suffix` (after spaces or newlines), with that whitespace."""
    body = suffix.lstrip(" \n")
    for tok in specials:
        if body.startswith(tok):
            return suffix[: len(suffix) - len(body)] + tok
    return None


def probe(tokenizer) -> TurnFormat:
    """Read the template's turn conventions (cached per tokenizer and template).

    Raises TemplateRefused when the template cannot render even a one-question chat."""
    template = getattr(tokenizer, "chat_template", None)
    key = (id(tokenizer), len(tokenizer), str(template), tokenizer.eos_token)
    if key in _cache:
        return _cache[key]
    style = reasoning_style(tokenizer)
    text = render(tokenizer, [*_PROBE_USER, {"role": "assistant", "content": ANSWER}])
    at = text.find(ANSWER)
    if at < 0:
        raise TemplateRefused("the chat template does not render the assistant's answer")
    head = render(tokenizer, _PROBE_USER)
    training = text[len(head):at] if text.startswith(head) else text[:at]
    try:
        full_prompt = render(tokenizer, _PROBE_USER, add_generation_prompt=True)
        template_prompt = full_prompt[len(head):] if full_prompt.startswith(head) else full_prompt
    except TemplateRefused:
        template_prompt = None
    end = leading_turn_end(text[at + len(ANSWER):], special_strings(tokenizer))
    notes = []
    turn_end = end.strip() if end else None
    end_ids = tokenizer.encode(turn_end, add_special_tokens=False) if turn_end else []
    stop_ids, stop_strings = [], []
    if len(end_ids) == 1:
        stop_ids.append(end_ids[0])
    elif turn_end:
        stop_strings.append(turn_end)
        notes.append(CodedText(f"the turn end {turn_end!r} is {len(end_ids)} tokens, not one: generation stops on it "
                               "as text", "turn_end_tokens", turn_end=repr(turn_end), tokens=len(end_ids)))
    elif tokenizer.eos_token:
        notes.append(CodedText("the chat template closes an answer with no special token: the tokenizer's eos "
                               f"{tokenizer.eos_token!r} is trained after each answer, so the model learns to stop",
                               "eos_after_answer", eos=repr(tokenizer.eos_token)))
    else:
        notes.append(CodedText("the chat template closes an answer with no special token and the tokenizer has no "
                               "eos: the fine-tuned model will not know where to stop", "no_stop_token"))
    eos = tokenizer.eos_token_id
    if eos is not None and eos not in stop_ids:
        stop_ids.append(eos)
    info = TurnFormat(turn_end, end_ids, stop_ids, stop_strings, training, template_prompt, style, notes)
    if len(_cache) > 64:
        _cache.clear()
    _cache[key] = info
    return info


def stop_token_ids(tokenizer, model=None) -> list[int]:
    """Every id generation should stop on: the template's turn end, the tokenizer's eos, and any eos
    the model's own generation_config already lists (order kept, no repeats)."""
    ids: list[int] = []
    try:
        ids += probe(tokenizer).stop_ids
    except TemplateRefused:
        pass
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    gen = getattr(model, "generation_config", None)
    e = getattr(gen, "eos_token_id", None)
    ids += list(e) if isinstance(e, (list, tuple)) else [e] if e is not None else []
    return list(dict.fromkeys(i for i in ids if isinstance(i, int)))


def stop_strings(tokenizer) -> list[str]:
    try:
        return probe(tokenizer).stop_strings
    except TemplateRefused:
        return []


def set_generation_eos(model, tokenizer) -> list[int]:
    """Make `model.generation_config.eos_token_id` list the turn end beside eos, so every folder the
    model is saved to stops where its answers end, in any runtime. Returns the ids."""
    ids = stop_token_ids(tokenizer, model)
    gen = getattr(model, "generation_config", None)
    if gen is not None and ids:
        gen.eos_token_id = ids if len(ids) > 1 else ids[0]
        if gen.pad_token_id is None and tokenizer.pad_token_id is not None:
            gen.pad_token_id = tokenizer.pad_token_id
    return ids


def save_generation_config(model, folder) -> None:
    """Write the model's generation_config.json (with the turn-end eos of `set_generation_eos`) into
    `folder`; adapter folders get one too, for runtimes that read it beside adapter_config.json."""
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.save_pretrained(str(folder))


# ---- where an answer is, and what precedes it ----

def with_sentinels(messages: list[dict], i: int, reasoning: str) -> list[dict]:
    m = dict(messages[i])
    m["content"] = ANSWER
    if m.get("reasoning") and reasoning == "keep":
        m["reasoning"] = REASONING
    return [*messages[:i], m, *messages[i + 1:]]


def answer_span(tokenizer, messages: list[dict], i: int, full: str, style: str, reasoning: str = "keep",
                specials: list[str] | None = None, tools: list | None = None) -> tuple[int, int] | None:
    """Character span, in `full` (the training rendering of `messages`), of assistant turn `i`: its
    reasoning (where the template renders it) and content, plus the turn end that follows. What the
    template puts between the header and the answer (an empty think block) is not in it.

    Found by rendering the same chat with turn i's text replaced by sentinels: the text before the
    first sentinel and after the answer sentinel must frame `full`. None when they do not (the
    template renders the turn in a way that depends on its content); the caller then searches.
    A turn that calls tools is toolspan.py's `call_turn_span`, which spans its calls too."""
    specials = specials if specials is not None else special_strings(tokenizer)
    probe_text = render(tokenizer, template_messages(with_sentinels(messages, i, reasoning), style, reasoning), tools=tools)
    at = probe_text.find(ANSWER)
    if at < 0:
        return None
    r = probe_text.find(REASONING)
    start = r if 0 <= r < at else at
    prefix, suffix = probe_text[:start], probe_text[at + len(ANSWER):]
    if not (full.startswith(prefix) and full.endswith(suffix) and len(prefix) + len(suffix) <= len(full)):
        return None
    end = len(full) - len(suffix)
    closing = leading_turn_end(suffix, specials)
    if closing:
        end += len(closing)
    return (len(prefix), end) if end > len(prefix) else None


def training_prompt(tokenizer, prompt: list[dict], reasoning: bool = False, tools: list | None = None) -> str:
    """The text a model is asked with: the conversation `prompt` (ending before an assistant turn)
    rendered exactly as training renders what precedes an answer, so the model is asked as it was
    taught. With `reasoning`, it ends where the model's reasoning begins (inside an open think block
    for templates that write one); otherwise where the final answer begins.

    Raises TemplateRefused."""
    style = reasoning_style(tokenizer)
    msgs = [*prompt, {"role": "assistant", "content": ANSWER, **({"reasoning": REASONING} if reasoning else {})}]
    text = render(tokenizer, template_messages(msgs, style), tools=tools)
    cut = [i for i in (text.find(REASONING), text.find(ANSWER)) if i >= 0]
    if not cut:  # the template drops a final assistant turn: fall back on its generation prompt
        return render(tokenizer, prompt, add_generation_prompt=True, tools=tools)
    return text[:_token_start(tokenizer, text, min(cut))]


def _token_start(tokenizer, text: str, at: int) -> int:
    """Where the token holding character `at` begins. Training marks every token that overlaps an
    answer, so when a pre-tokenizer glues the space before an answer to its first word (" It"), the
    prompt must stop before that space: the model then generates the same tokens it was taught."""
    try:
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    except Exception:  # noqa: BLE001 - no offsets (a slow tokenizer): cut at the character
        return at
    for start, end in offsets:
        if end > at:
            return min(start, at)
    return at


def generation_prompt(tokenizer, prompt: list[dict], mode: str = "training", reasoning: bool = False,
                      tools: list | None = None) -> str:
    """The prompt text for `mode`: "training" (what training put before answers, the default) or
    "template" (the template's own add_generation_prompt=True)."""
    if mode not in GENERATION_PROMPTS:
        raise UserError(f"--generation-prompt must be one of {', '.join(GENERATION_PROMPTS)} (got {mode!r})",
                        "unknown_choice", option="--generation-prompt", value=mode, choices=list(GENERATION_PROMPTS))
    if mode == "template":
        return render(tokenizer, prompt, add_generation_prompt=True, tools=tools)
    return training_prompt(tokenizer, prompt, reasoning, tools)


def prompt_difference(tokenizer) -> str | None:
    """A sentence for `data check`/`data preview` when the template's generation prompt is not what
    training puts before an answer, showing both; None when they agree."""
    try:
        info = probe(tokenizer)
    except TemplateRefused:
        return None
    if not info.prompts_differ:
        return None
    return CodedText(f"the chat template's generation prompt {info.template_prompt!r} differs from what training puts "
                     f"before an answer {info.training_prompt!r}: chat and eval ask with the training one "
                     "(--generation-prompt template to use the template's)", "prompts_differ",
                     template=repr(info.template_prompt), training=repr(info.training_prompt))
