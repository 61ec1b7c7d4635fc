"""GGUF test models.

- make_qwen2: a tiny Qwen2 model on Qwen2's real vocabulary (llama.cpp ships it), so llama.cpp's
  converter recognises its tokenizer: the demo model's own BPE vocabulary is refused by design. The
  vocabulary and its chat template come from ggml-vocab-qwen2.gguf in the pinned llama-cpp-python
  source distribution (downloaded once into the cache, see ship/llamacpp.py). It is the base-model
  case: eos <|endoftext|>, turns closed by <|im_end|>.
- make_tiny_gguf: a GGUF file written here, offline, with the gguf package's own writer
  (write_llama_gguf), for `tunestudio models import`: a tiny random Llama (grouped-query attention,
  untied output layer) with the demo's byte-level BPE tokenizer, its tensors named and its q/k weights
  permuted as llama.cpp's converter does.
"""

from __future__ import annotations

import json
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


# ---- a GGUF file written here, offline, for `tunestudio models import` -----------------------------

HEADS, KV_HEADS, LAYERS, HIDDEN = 4, 2, 2, 64

LAYER_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def permute(w, n_head: int):
    """llama.cpp's q/k permutation (transformers' LlamaTensorProcessor reverses it on reading)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(model, tokenizer, path: Path, arch: str = "llama") -> Path:
    """`model` (a LlamaForCausalLM) and its byte-level BPE `tokenizer` as an F32 GGUF file."""
    import gguf
    import numpy as np

    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny-test")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(len(tokenizer))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [None] * len(tokenizer)
    for token, i in spec["model"]["vocab"].items():
        tokens[i] = token
    for added in spec["added_tokens"]:
        tokens[added["id"]] = added["content"]
    special = {a["id"] for a in spec["added_tokens"] if a["special"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    w.add_bos_token_id(tokenizer.bos_token_id)
    w.add_eos_token_id(tokenizer.eos_token_id)
    w.add_pad_token_id(tokenizer.pad_token_id)
    w.add_add_bos_token(False)
    w.add_chat_template(tokenizer.chat_template)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    for i in range(cfg.num_hidden_layers):
        names.update({f"model.layers.{i}.{hf}.weight": f"blk.{i}.{g}.weight" for hf, g in LAYER_NAMES.items()})
    for hf, name in names.items():
        a = model.state_dict()[hf].detach().float().numpy()
        if ".attn_q." in name:
            a = permute(a, cfg.num_attention_heads)
        elif ".attn_k." in name:
            a = permute(a, cfg.num_key_value_heads)
        w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def make_tiny_gguf(root: Path) -> tuple[Path, Path]:
    """A tiny random Llama written as a GGUF file: (the source model folder, root/Tiny-Test.Q8_0.gguf)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunestudio.demo.model import train_tokenizer

    tok = train_tokenizer(["the cat sat on the mat and the dog sat on the log",
                           "a quick brown fox jumps over the lazy dog"] * 20)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                      num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    src = root / "source"
    model.save_pretrained(src)
    tok.save_pretrained(src)
    # named as a quantised download is: the default model name drops the suffix
    return src, write_llama_gguf(model, tok, root / "Tiny-Test.Q8_0.gguf")

