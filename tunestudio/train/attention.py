"""How a micro-batch meets attention: padded rows, or padding-free (the rows packed into one).

Padding-free: the micro-batch's rows are concatenated into one row of shape (1, sum of lengths) with
`position_ids` restarting at 0 at each row's start and no attention mask, as TRL's
`padding_free=True` and transformers' `DataCollatorWithFlattening` do. transformers (>= 4.53,
`masking_utils.find_packed_sequence_indices`) reads the restarts: FlashAttention-2 runs its
variable-length kernel over them (no padding at all, no cross-row attention), SDPA and eager get a
block-diagonal causal mask. Each row's first label is ignored, so no row learns to predict the
next row's first token.

When it pays (`--padding-free auto`, the default): with CUDA and FlashAttention-2 installed, where
the varlen kernel does only each row's own attention. On a CPU, length-grouped batches are already
~0.5% padding, and SDPA with a block-diagonal mask attends over the whole packed row (about batch
size x the attention FLOPs), so it stays off there (docs/profile.md). `on` forces it anywhere, for
the SFT objective and the methods that do not prepend virtual tokens.
"""

from __future__ import annotations

import importlib.util

from tunestudio.core.errors import UserError

NOT_WITH = ("prefix", "prompt")   # virtual tokens before every row: one packed row would get them once


def flash_attention_available() -> bool:
    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None


def wanted(cfg) -> bool:
    """Whether this run packs its micro-batches (`cfg.padding_free` resolved for this machine)."""
    if cfg.padding_free == "off" or cfg.objective != "sft" or cfg.method in NOT_WITH:
        return False
    return cfg.padding_free == "on" or flash_attention_available()


def check_config(cfg) -> None:
    """UserError for `--padding-free on` where it cannot work."""
    if cfg.padding_free != "on":
        return
    if cfg.objective != "sft":
        raise UserError(f"--padding-free on: packed batches are for the sft objective; --objective "
                        f"{cfg.objective} pairs or groups its rows itself (use auto or off)",
                        "padding_free_not_sft", option="padding_free", objective=cfg.objective)
    if cfg.method in NOT_WITH:
        raise UserError(f"--padding-free on: --method {cfg.method} puts virtual tokens before every row, "
                        "which a packed row would get only once (use auto or off)",
                        "padding_free_virtual_tokens", option="padding_free", method=cfg.method)


def load_kwargs(cfg) -> dict:
    """`from_pretrained` arguments: FlashAttention-2 for padding-free batches where it is installed
    (its varlen kernel is what makes them pay); else the model's default (SDPA)."""
    return {"attn_implementation": "flash_attention_2"} if wanted(cfg) and flash_attention_available() else {}


def packs_correctly(model, token_id: int) -> bool:
    """True when `model` keeps packed rows apart: the logits of a row alone equal its logits after
    another row in the same packed row (positions restarting). A model whose attention ignores
    `position_ids` restarts would let rows attend to each other, and silently train on that.
    One forward of 2 x 6 tokens; fp32 tolerance 1e-3 (bf16/fp16: 5e-2). transformers reads packing
    only without a cache, as in training (the engine turns use_cache off)."""
    import torch

    device = next(model.parameters()).device
    first = torch.full((1, 6), token_id, device=device)
    second = torch.arange(6, device=device)[None] % 4 + token_id   # any ids: the shapes matter
    second = second.clamp(max=model.get_input_embeddings().weight.shape[0] - 1)
    positions = torch.arange(6, device=device)[None]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            alone = model(input_ids=second, position_ids=positions, use_cache=False).logits.float()                # (1, 6, V)
            packed = model(input_ids=torch.cat([first, second], 1),
                           position_ids=torch.cat([positions, positions], 1), use_cache=False).logits.float()[:, 6:]
    finally:
        model.train(was_training)
    dtype = next(model.parameters()).dtype
    tol = 1e-3 if dtype == torch.float32 else 5e-2
    return bool(torch.allclose(alone, packed, atol=tol, rtol=tol))


def resolve(cfg, model, token_id: int) -> tuple[bool, str | None]:
    """(pack?, warning): `wanted(cfg)`, checked on the model. With `on` a model that mixes packed
    rows is a UserError; with `auto` it falls back to padded batches with a warning."""
    if not wanted(cfg):
        return False, None
    if packs_correctly(model, token_id):
        return True, None
    why = (f"this {model.config.model_type} model's attention does not keep packed rows apart "
           "(position_ids restarts are ignored)")
    if cfg.padding_free == "on":
        raise UserError(f"--padding-free on: {why}; use --padding-free off", "padding_free_mixes_rows",
                        option="padding_free", model_type=str(model.config.model_type))
    return False, f"padded batches: {why}"
