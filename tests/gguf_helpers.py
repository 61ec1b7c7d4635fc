"""A tiny Qwen2 model on Qwen2's real vocabulary (llama.cpp ships it), so llama.cpp's converter
recognises its tokenizer: the demo model's own BPE vocabulary is refused by design.

The vocabulary and its chat template come from ggml-vocab-qwen2.gguf in the pinned
llama-cpp-python source distribution (downloaded once into the cache, see evaluate/llamacpp.py).
It is the base-model case: eos <|endoftext|>, turns closed by <|im_end|>.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def qwen2_vocab() -> Path:
    """ggml-vocab-qwen2.gguf, fetched on demand. Skips (loudly, with the reason) only when the
    package index cannot be reached; any other failure is an error."""
    from tunestudio.core.errors import UserError
    from tunestudio.ship import llamacpp

    try:
        return llamacpp.vocab_file("qwen2")
    except UserError as e:
        if "could not download" in str(e):
            pytest.skip(f"llama.cpp's source distribution cannot be downloaded here: {e}")
        raise


def make_qwen2(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random Qwen2ForCausalLM (~10M parameters, nearly all in the 151k-token embedding and output
    layer) with Qwen2's tokenizer and chat template. The output layer is not tied: a tiny random
    model with tied embeddings echoes its last input token (here the newline after the assistant
    header), so every answer would be empty and comparing answers would prove nothing."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    vocab = qwen2_vocab()
    tok = AutoTokenizer.from_pretrained(str(vocab.parent), gguf_file=vocab.name)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    Qwen2ForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
