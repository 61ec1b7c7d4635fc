"""What autograd keeps per decoder layer and per token, against models/memory.py's formula.

    python bench/memory_saved.py            # SmolLM2-135M's shape and a narrower one (~1 min, 2 CPU cores)

Builds each model from its config (random weights: nothing to download) with 2 and 4 decoder
layers, applies the method as the engine does (methods.apply_method, model_source.base_dtype: the
frozen base of LoRA in bf16 under bf16), runs one forward pass under the engine's autocast and
counts, with torch.autograd.graph.saved_tensors_hooks, the bytes of every distinct storage saved
for the backward pass that is not a parameter. The difference between 4 and 2 layers, per layer
and per token, is what `memory.layer_bytes_per_token` estimates; a 16-bit copy of each fp32 weight
(autocast) is counted apart, as the estimate counts it with the weights. The peak RSS of a real
run is this times the batch's tokens and layers, times the CPU allocator's slack
(memory.CPU_ACTIVATION_SLACK), plus weights, gradients, optimizer state, the logits of the
trained positions and the process itself: bench/memory_estimate.md has the measured runs.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from tunestudio.config.run_config import RunConfig
from tunestudio.models import memory
from tunestudio.models.shape import model_dims
from tunestudio.train import methods, model_source

SHAPES = {
    "SmolLM2-135M": dict(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3,
                         head_dim=64, vocab_size=49152, tie_word_embeddings=True),
    "narrow": dict(hidden_size=256, intermediate_size=1024, num_attention_heads=4, num_key_value_heads=1,
                   head_dim=64, vocab_size=5000, tie_word_embeddings=True),
}
BATCH, LENGTH = 3, 50   # 150 tokens: no activation has a weight's shape


def saved_bytes(shape: dict, layers: int, method: str, precision: str) -> tuple[int, int]:
    """(bytes of the saved activations, bytes of 16-bit weight copies) of one forward pass."""
    cfg = RunConfig(model="x", method=method, precision=precision)
    conf = LlamaConfig(**shape, num_hidden_layers=layers)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(conf, dtype=model_source.base_dtype(cfg))
    model = methods.apply_method(model, cfg, "x")
    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    wide = {tuple(p.shape) for p in model.parameters() if p.dim() == 2 and p.dtype == torch.float32}
    acts, casts = {}, {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            cast = precision == "bf16" and t.dtype == torch.bfloat16 and tuple(t.shape) in wide
            (casts if cast else acts)[ptr] = t.untyped_storage().nbytes()
        return t

    ids = torch.randint(0, conf.vocab_size, (BATCH, LENGTH))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
        model.model(input_ids=ids, attention_mask=torch.ones_like(ids))   # the decoder layers, no head
    return sum(acts.values()), sum(casts.values())


def main() -> None:
    print(f"{'shape':14s} {'method':6s} {'precision':9s} {'measured':>9s} {'formula':>9s}  bytes per layer per token")
    for name, shape in SHAPES.items():
        d = model_dims(LlamaConfig(**shape, num_hidden_layers=2))
        for method in ("full", "lora"):
            for precision in ("fp32", "bf16"):
                (a2, _), (a4, _) = (saved_bytes(shape, n, method, precision) for n in (2, 4))
                measured = (a4 - a2) / 2 / (BATCH * LENGTH)
                formula = memory.layer_bytes_per_token(d, act_bytes=memory.DTYPE_BYTES[precision], method=method)
                print(f"{name:14s} {method:6s} {precision:9s} {measured:9.0f} {formula:9d}  ({formula / measured - 1:+.1%})")


if __name__ == "__main__":
    main()
