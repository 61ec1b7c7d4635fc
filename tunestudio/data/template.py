"""Chat templates: the model's own, or a named fallback for a base model that has none.

Both fallbacks wrap assistant content (and its end-of-turn marker) in `{% generation %}` so
`return_assistant_tokens_mask` and TRL's assistant-only loss work with them; our own encoder
does not need the markers (encode.py finds assistant turns by rendering prefixes).
"""

from __future__ import annotations

# ChatML, as Qwen and many others use it. Assistant content ends with <|im_end|>, which is also
# the token generation stops on, so it is trained together with the content.
CHATML_GENERATION = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# For base models whose vocabulary has no chat tokens: plain headers, and the tokenizer's own eos
# after each answer so the fine-tuned model learns to stop where generation already stops.
PLAIN_GENERATION = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ message['content'] + '\\n\\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ '### User:\\n' + message['content'] + '\\n\\n' }}"
    "{%- else -%}"
    "{{ '### Assistant:\\n' }}{% generation %}{{ message['content'] + (eos_token or '') }}{% endgeneration %}{{ '\\n\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '### Assistant:\\n' }}{%- endif -%}"
)

TEMPLATES = {"chatml": CHATML_GENERATION, "plain": PLAIN_GENERATION}


def ensure_chat_template(tokenizer, name: str = "chatml") -> str:
    """Give `tokenizer` the fallback template `name` if it has no chat template of its own.

    Returns the template in use: "model" when the tokenizer already had one, else `name`.
    "chatml" suits models that know <|im_start|>/<|im_end|>; "plain" suits other base models.
    """
    if getattr(tokenizer, "chat_template", None):
        return "model"
    if name not in TEMPLATES:
        from tunestudio.errors import UserError

        raise UserError(f"unknown chat template '{name}': choose one of {', '.join(TEMPLATES)}")
    tokenizer.chat_template = TEMPLATES[name]
    return name
