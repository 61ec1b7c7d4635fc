"""An Ollama `Modelfile` for an exported GGUF: FROM, TEMPLATE, PARAMETER stop, SYSTEM.

Ollama writes prompts with Go templates, not the Jinja chat template inside the GGUF. For ChatML
models (Qwen and its kin) the template is derived here from what the run's own chat template
renders, including the default system block and any text the training prompt adds after the
assistant header (Qwen3's empty think block), so Ollama asks exactly as training did. For other
families no TEMPLATE is written and Ollama picks one from the chat template embedded in the GGUF;
the Modelfile says so in a comment.
"""

from __future__ import annotations

import json

from tunestudio.data.chat import turns
from tunestudio.evaluate.run_eval import select_records

_SYS, _USR = "\u0001SYSTEM\u0001", "\u0001USER\u0001"
_CHATML_USER = "<|im_start|>user\n" + _USR + "<|im_end|>\n<|im_start|>assistant\n"


def _chatml_template(tok) -> str | None:
    """The Go template that renders like `tok`'s ChatML template, or None when it is not ChatML."""
    try:
        with_sys = turns.training_prompt(tok, [{"role": "system", "content": _SYS}, {"role": "user", "content": _USR}])
        without = turns.training_prompt(tok, [{"role": "user", "content": _USR}])
    except turns.TemplateRefused:
        return None
    sys_block = "<|im_start|>system\n" + _SYS + "<|im_end|>\n"
    if not with_sys.startswith(sys_block + "<|im_start|>user\n"):
        return None
    at = with_sys.find(_CHATML_USER)
    if at < 0 or _CHATML_USER not in without:
        return None
    after = with_sys[at + len(_CHATML_USER):]          # what training adds after the assistant header
    default_system = without[:without.find(_CHATML_USER)]  # the template's own system block, if any
    if _SYS in after or _USR in default_system:
        return None
    return ("{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ else }}" + default_system + "{{ end }}"
            "{{- range .Messages }}{{- if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n"
            "{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n{{ end }}"
            "{{- end }}<|im_start|>assistant\n" + after)


def _quoted(text: str) -> str:
    if '"""' in text:
        raise ValueError("text holds a triple quote")
    return '"""' + text + '"""'


def modelfile(gguf_name: str, tok, stop_tokens: list[str], system: str | None = None) -> str:
    """The Modelfile text for `gguf_name` (a file in the same folder): FROM, TEMPLATE when the chat
    template is ChatML, `PARAMETER stop` for every stop token, greedy decoding as `tunestudio chat`
    does, and SYSTEM when the run's data used one system prompt."""
    lines = ["# Ollama: ollama create NAME -f Modelfile && ollama run NAME", f"FROM ./{gguf_name}"]
    template = _chatml_template(tok)
    if template is not None and '"""' not in template:
        lines.append(f"TEMPLATE {_quoted(template)}")
    else:
        lines.append("# no TEMPLATE: Ollama derives one from the chat template embedded in the GGUF")
    for s in dict.fromkeys(stop_tokens):
        lines.append(f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}")
    lines.append("PARAMETER temperature 0")
    if system and '"""' not in system:
        lines.append(f"SYSTEM {_quoted(system)}")
    return "\n".join(lines) + "\n"


def run_system_prompt(ws, r) -> str | None:
    """The system prompt the run's training data used, when every test row that has one shares it."""

    try:
        records, _, _ = select_records(ws, r, None, "test", limit=50)
    except Exception:  # noqa: BLE001 - a run without a split still exports; it just has no SYSTEM line
        return None
    systems = {m["content"] for rec in records if rec.is_chat for m in rec.prompt()[:1] if m.get("role") == "system"}
    chat = [rec for rec in records if rec.is_chat]
    if len(systems) == 1 and all(rec.prompt()[:1] and rec.prompt()[0].get("role") == "system" for rec in chat):
        content = systems.pop()
        return content if isinstance(content, str) else None
    return None
