"""Chat templates: the model's own, or a named fallback for a base model that has none.

Both fallbacks wrap assistant content (and its end-of-turn marker) in `{% generation %}` so
`return_assistant_tokens_mask` and TRL's assistant-only loss work with them; our own encoder
does not need the markers (encode.py finds assistant turns by rendering prefixes).

Tool use (`apply_chat_template(..., tools=[...])`, calls as OpenAI `tool_calls`, results as `tool`
messages) in the fallbacks, Hermes / Qwen2.5 style, so a model trained on them calls tools the way
Qwen models and most tool-call parsers (vLLM's `hermes`) expect:

    chatml   <|im_start|>system\n{system}\n\n# Tools\n<tools>\n{tool json}\n</tools>\nTo call a function, answer
             with <tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>
             <|im_start|>assistant\n{content}\n<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call><|im_end|>
             <|im_start|>user\n<tool_response>\n{result}\n</tool_response><|im_end|>
    plain    {system}\n\n### Tools:\nTo call a function, answer with <tool_call>...</tool_call>\nThe functions:\n{tool json}\n\n
             ### Assistant:\n<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>{eos}\n\n
             ### Tool:\n{result}\n\n

The call's JSON is exactly `{"name": ..., "arguments": ...}` with the arguments as `tojson` writes
them; evaluate/toolparse.py reads it back from generated text. Conversations without tools render
exactly as before.
"""

from __future__ import annotations

from tunestudio.core.errors import UserError

# The calls of an assistant message, Hermes / Qwen style: `<tool_call>\n{"name": ..., "arguments":
# {...}}\n</tool_call>`, one per call, after the content (a newline between them).
_CALLS = (
    "{%- for tool_call in message['tool_calls'] or [] -%}"
    "{%- set call = tool_call['function'] if tool_call['function'] is defined else tool_call -%}"
    "{%- if message['content'] or not loop.first -%}{{ '\\n' }}{%- endif -%}"
    "{{ '<tool_call>\\n{\"name\": \"' + call['name'] + '\", \"arguments\": ' }}"
    "{{ call['arguments'] if call['arguments'] is string else call['arguments'] | tojson }}"
    "{{ '}\\n</tool_call>' }}"
    "{%- endfor -%}"
)
_TOOL_LIST = "{%- for tool in tools -%}{{ '\\n' + (tool | tojson) }}{%- endfor -%}"
# How to call, said once after the tool list (short: it is in every row's prompt).
_HOWTO = ("{%- set _CALL_HOWTO = 'To call a function, answer with <tool_call>\\n{\"name\": <function-name>, "
          "\"arguments\": <args-json-object>}\\n</tool_call>' -%}")

# ChatML, as Qwen and many others use it. Assistant content ends with <|im_end|>, which is also
# the token generation stops on, so it is trained together with the content. With tools, the
# system turn lists them in <tools></tools> (one JSON object a line, as Qwen2.5 does) and says how
# to call, calls follow the content (_CALLS), and tool results come back in a user turn, each in
# <tool_response></tool_response> (consecutive results share the turn, as in Qwen2.5).
def _chatml(tool_prompt: str) -> str:
    """ChatML with `tool_prompt` (Jinja) after the system content when the row has tools."""
    return (
        _HOWTO +
        "{%- if tools -%}"
        "{{ '<|im_start|>system\\n' }}"
        "{%- if messages[0]['role'] == 'system' -%}{{ messages[0]['content'] + '\\n\\n' }}{%- endif -%}"
        + tool_prompt +
        "{%- endif -%}"
        "{%- for message in messages -%}"
        "{%- if tools and loop.first and message['role'] == 'system' -%}"
        "{%- elif message['role'] == 'assistant' -%}"
        "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] }}" + _CALLS +
        "{{ '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
        "{%- elif message['role'] == 'tool' -%}"
        "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}{{ '<|im_start|>user' }}{%- endif -%}"
        "{{ '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
        "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}{{ '<|im_end|>\\n' }}{%- endif -%}"
        "{%- else -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


CHATML_GENERATION = _chatml(
    "{{ '# Tools\\n<tools>' }}" + _TOOL_LIST + "{{ '\\n</tools>\\n' + _CALL_HOWTO + '<|im_end|>\\n' }}")

# Each function as a signature, `get_weather(city: string)`: ~8 tokens a function where its JSON
# schema takes ~50. Not as the shape of its call (`{"name": "get_weather", "arguments": {"city":
# "string"}}`, the first compact form): a call then repeats the list's text token for token up to
# its value, and the model learnt to copy the list's "string" instead of the request's city (the
# city right in 12-17 of 100 held-out weather calls after 4 epochs, 64 after 2 with signatures).
_COMPACT_TOOL_LIST = (
    "{%- for tool in tools -%}"
    "{%- set f = tool['function'] if tool['function'] is defined else tool -%}"
    "{%- set props = f['parameters']['properties'] if f['parameters'] is defined and f['parameters']['properties'] "
    "is defined else {} -%}"
    "{{ '\\n' + f['name'] + '(' }}"
    "{%- for key, spec in props.items() -%}"
    "{{ key + ': ' + (spec['type'] if spec['type'] is defined else 'any') }}"
    "{%- if not loop.last -%}{{ ', ' }}{%- endif -%}"
    "{%- endfor -%}{{ ')' }}"
    "{%- endfor -%}"
)
# ChatML as above, with the tools listed compactly and no how-to line, for a model trained from
# scratch (the demo model): the tool list is in every prompt, and at ~220 tokens a row (JSON schemas
# and the how-to) the 4M-parameter demo model did not learn to read the request (tool_call_match
# 0.0 after 3 epochs). Calls, results and rows without tools are as in ChatML.
CHATML_COMPACT_TOOLS = _chatml(
    "{{ '# Tools\\n<tools>' }}" + _COMPACT_TOOL_LIST + "{{ '\\n</tools><|im_end|>\\n' }}")

# For base models whose vocabulary has no chat tokens: plain headers, and the tokenizer's own eos
# after each answer so the fine-tuned model learns to stop where generation already stops. With
# tools: a "### Tools:" block after the system prompt (how to call, then one function per line),
# calls after the content as in ChatML (_CALLS), results under "### Tool:".
PLAIN_GENERATION = (
    _HOWTO +
    "{%- if tools -%}"
    "{%- if messages[0]['role'] == 'system' -%}{{ messages[0]['content'] + '\\n\\n' }}{%- endif -%}"
    "{{ '### Tools:\\n' + _CALL_HOWTO + '\\nThe functions:' }}" + _TOOL_LIST + "{{ '\\n\\n' }}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if tools and loop.first and message['role'] == 'system' -%}"
    "{%- elif message['role'] == 'system' -%}"
    "{{ message['content'] + '\\n\\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ '### User:\\n' + message['content'] + '\\n\\n' }}"
    "{%- elif message['role'] == 'tool' -%}"
    "{{ '### Tool:\\n' + message['content'] + '\\n\\n' }}"
    "{%- else -%}"
    "{{ '### Assistant:\\n' }}{% generation %}{{ message['content'] }}" + _CALLS +
    "{{ eos_token or '' }}{% endgeneration %}{{ '\\n\\n' }}"
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
        raise UserError(f"unknown chat template '{name}': choose one of {', '.join(TEMPLATES)}", "unknown_choice",
                        option="--template", value=name, choices=list(TEMPLATES))
    tokenizer.chat_template = TEMPLATES[name]
    return name
