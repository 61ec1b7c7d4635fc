"""Tiny models that wear real model families' conventions, built in a few lines from the demo model.

The templates are written here, in the shapes those families ship (read in llama.cpp's
models/templates), not copied: what matters is the convention each one carries.
- Qwen2.5 *base*: ChatML turns closed by <|im_end|>, but eos <|endoftext|>, no pad token, tied
  embeddings. A model fine-tuned on it must still stop at <|im_end|>.
- Qwen3: an empty `<think>\\n\\n</think>\\n\\n` before the last answer in training renderings (its
  reasoning there when given as reasoning_content), not in the generation prompt.
- DeepSeek-R1-distill: reasoning stripped from rendered answers, `<think>\\n` in the generation
  prompt only; turns closed by eos.
- Mistral: raises unless roles alternate user/assistant and refuses system messages.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ENDOFTEXT = "<|endoftext|>"

QWEN25 = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else -%}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif -%}"
    "{%- for m in messages -%}{%- if m['role'] != 'system' -%}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

QWEN3 = (
    "{%- set ns = namespace(last_user=-1) -%}"
    "{%- for m in messages -%}{%- if m['role'] == 'user' -%}{%- set ns.last_user = loop.index0 -%}{%- endif -%}{%- endfor -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'assistant' -%}"
    "{%- set content = m['content'] -%}{%- set reasoning = '' -%}"
    "{%- if m.reasoning_content is string -%}{%- set reasoning = m.reasoning_content -%}"
    "{%- elif '</think>' in content -%}"
    "{%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\\n') -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}{%- endif -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- if loop.index0 > ns.last_user -%}"
    "{{ '<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}"
    "{%- else -%}{{ content }}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- else -%}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif -%}"
    "{%- endif -%}"
)

R1_DISTILL = (
    "{{ bos_token }}{%- for m in messages -%}{%- if m['role'] == 'system' -%}{{ m['content'] }}{%- endif -%}{%- endfor -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}{{ '<|im_start|>User: ' + m['content'] }}"
    "{%- elif m['role'] == 'assistant' -%}{%- set c = m['content'] -%}"
    "{%- if '</think>' in c -%}{%- set c = c.split('</think>')[-1] -%}{%- endif -%}"
    "{{ '<|im_start|>Assistant: ' + c + eos_token }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>Assistant: <think>\\n' }}{%- endif -%}"
)

MISTRAL = (
    "{{ bos_token }}{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{{ raise_exception('System role not supported') }}{%- endif -%}"
    "{%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}"
    "{%- if m['role'] == 'user' -%}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
    "{%- else -%}{{ m['content'] + eos_token }}{%- endif -%}"
    "{%- endfor -%}"
)


def family_model(demo_model: Path, dest: Path, template: str, eos: str | None = None, pad: bool = True,
                 tie: bool = False) -> Path:
    """A copy of the demo model wearing another convention: its chat template, its eos token (the
    model's own generation_config then stops only on it, as a base model's does), no pad token,
    tied input/output embeddings."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    shutil.copytree(demo_model, dest)
    tok = AutoTokenizer.from_pretrained(dest)
    tok.chat_template = template
    if eos:
        tok.eos_token = eos
    if not pad:
        tok.pad_token = None
    tok.save_pretrained(dest)
    model = AutoModelForCausalLM.from_pretrained(dest)
    model.config.eos_token_id = tok.eos_token_id
    model.config.pad_token_id = tok.pad_token_id
    if tie:
        model.config.tie_word_embeddings = True
        model.lm_head.weight = model.model.embed_tokens.weight
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(dest)
    return dest
