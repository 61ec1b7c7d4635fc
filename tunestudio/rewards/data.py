"""Prompt datasets for GRPO and reward tests: what the model is asked, and what rewards may check.

Two shapes are read:
- prompt rows (JSON Lines or a JSON list): `prompt` (a string, or a list of chat messages) and any
  other columns; `reference` (or `answer`, `solution`, `ground_truth`) is passed to rewards as
  `reference`, every other column under its own name;
- any supervised dataset tunestudio reads (messages, ShareGPT, alpaca, CSV...): the conversation
  up to its last assistant turn is the prompt, that turn is the `reference`.
Each row keeps `_where` (file:line) so a reward error can name the row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tunestudio.data.formats import readers
from tunestudio.data.formats.load import load_file
from tunestudio.data.formats.problems import Problem, ProblemError

REFERENCE_KEYS = ("reference", "answer", "solution", "ground_truth")


@dataclass
class PromptRow:
    prompt: object     # str (one user message) or [{"role", "content"}, ...]
    row: dict          # the columns rewards receive as keywords; always has "reference" and "_where"


def load_prompts(path: Path) -> list[PromptRow]:
    """The prompt rows of the file at `path`. ProblemError (a UserError) naming file:line for a
    bad row, with the problem's code and fields for the web UI."""
    path = Path(path)
    rows = _prompt_file(path) if path.suffix.lower() in (".jsonl", ".json") else None
    if rows is None:
        rows = _supervised_file(path)
    if not rows:
        raise ProblemError(Problem(path.name, 0, "no prompts in the file", "no_prompts"))
    return rows


def _prompt_file(path: Path) -> list[PromptRow] | None:
    """Rows of a file whose rows carry a `prompt` column, or None when it has none (another shape)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(text)
        except RecursionError:
            raise ProblemError(readers.too_deep(path.name, 0)) from None
        except ValueError as e:
            raise ProblemError(Problem(path.name, 0, f"not valid JSON ({e})", "prompts_invalid_json",
                                       {"detail": str(e)})) from None
        if problem := readers.row_problem(path.name, 0, text, items):
            raise ProblemError(problem)
        if not isinstance(items, list):
            return None
        numbered = [(i + 1, item) for i, item in enumerate(items)]  # JSON lists: row numbers
    else:
        numbered = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    value = json.loads(line)
                except RecursionError:
                    raise ProblemError(readers.too_deep(path.name, n)) from None
                except ValueError as e:
                    raise ProblemError(Problem(path.name, n, f"not valid JSON ({e.msg})", "prompts_invalid_json",
                                               {"detail": e.msg})) from None
                if problem := readers.row_problem(path.name, n, line, value):
                    raise ProblemError(problem)
                numbered.append((n, value))
    if not numbered or not all(isinstance(r, dict) for _, r in numbered) or "prompt" not in numbered[0][1]:
        return None
    out = []
    for n, item in numbered:
        where = f"{path.name}:{n}"
        prompt = item.get("prompt")
        if isinstance(prompt, list):
            if not prompt or not all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                     and m.get("role") in ("system", "user", "assistant") for m in prompt):
                raise ProblemError(Problem(path.name, n, "'prompt' must be a string or a list of "
                                           "{\"role\": system|user|assistant, \"content\": text} messages",
                                           "prompt_wrong_shape"))
        elif not isinstance(prompt, str) or not prompt.strip():
            raise ProblemError(Problem(path.name, n, "'prompt' is missing or empty", "prompt_missing"))
        row = {k: v for k, v in item.items() if k != "prompt"}
        ref = next((row.pop(k) for k in REFERENCE_KEYS if k in row), None)
        out.append(PromptRow(prompt, {**row, "reference": ref, "_where": where}))
    return out


def _supervised_file(path: Path) -> list[PromptRow]:
    result = load_file(path, strict=True)
    if result.errors:
        raise ProblemError(result.errors[0])
    out = []
    for rec in result.records:
        if not rec.is_chat:
            raise ProblemError(Problem(path.name, 0, "plain text has no prompts: give prompt rows "
                                       "({\"prompt\": ..., \"reference\": ...}) or a chat/instruction dataset",
                                       "prompts_plain_text"))
        prompt = rec.prompt()
        if len(prompt) == 1 and prompt[0]["role"] == "user":
            prompt = prompt[0]["content"]
        out.append(PromptRow(prompt, {**(rec.meta or {}), "reference": rec.reference(), "_where": rec.where()}))
    return out
