"""LoRA's forward for training, with less memory-bound work around the matmuls than peft's.

peft's `lora.Linear` computes, for every adapted module, `result + lora_B(lora_A(dropout(x))) * scaling`
with `x` first cast to the adapter's fp32. Where matmuls are cheap (bf16 on a CPU with AMX, any GPU)
the cost is around them, profiled on SmolLM2-135M (docs/profile.md): each of the 210 modules draws its
own dropout mask (`bernoulli_`, a quarter of the step), casts its input to fp32 and back, and scales
and adds its output in passes of their own. Here, for the same adapter and the same loss:

- **one dropout mask per input tensor.** q/k/v receive the same tensor, and so do gate/up: the first
  of them draws the mask and the dropped input, the others reuse both (the mask is shared, each
  module still sees every element dropped with probability p). The mask comes from 16 random bits
  per element, four to a 64-bit draw (p rounded to 1/65536), and its 1/(1-p) rescale is folded into
  the B scaling;
- **the branch stays in the activations' dtype** (bf16 under autocast), and its output is added to
  the base output inside the B matmul (`addmm`), not in a separate pass.

Only `forward` of plain `lora.Linear` modules changes (their class becomes `FastLoraLinear`, a
subclass): the weights, their names, merging and what is saved are peft's. Anything else (DoRA and
other variants, several active adapters, a merged or disabled adapter, mixed-adapter batches, a base
layer that is not `torch.nn.Linear`, such as 4-bit or Conv1D, weights partitioned by DeepSpeed ZeRO-3)
takes peft's own forward.
"""

from __future__ import annotations

import torch
from peft.tuners.lora.layer import Linear as LoraLinear

ENABLED = True  # bench/train_speed.py turns it off to measure peft's forward


class SharedDropout:
    """The last input seen and its dropped copy: a module called with the same tensor (same
    object, unchanged since) gets the same dropped copy instead of drawing a new mask."""

    def __init__(self):
        self.x = None
        self.version = -1
        self.p = 0.0
        self.dropped = None

    def __call__(self, x: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
        """(x with each element zeroed with probability ~p, not rescaled; the p used)."""
        level = round(p * 65536)        # drop where 16 random bits fall below this
        p_used = level / 65536
        if self.x is x and self.version == x._version and self.p == p_used:
            return self.dropped, p_used
        bits = torch.randint(-2 ** 63, 2 ** 63 - 1, ((x.numel() + 3) // 4,), dtype=torch.int64, device=x.device)
        uniform16 = bits.view(torch.int16)[:x.numel()].view(x.shape)            # uniform over -32768..32767
        keep = (uniform16 >= level - 32768).to(x.dtype)
        self.x, self.version, self.p, self.dropped = x, x._version, p_used, x * keep
        return self.dropped, p_used


class FastLoraLinear(LoraLinear):
    """peft's lora.Linear with the forward described at the top of this module."""

    shared_dropout: SharedDropout

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        adapter = self._plain_adapter(args, kwargs)
        if adapter is None:
            return super().forward(x, *args, **kwargs)
        result = self.base_layer(x)
        dropout = self.lora_dropout[adapter]
        p = dropout.p if isinstance(dropout, torch.nn.Dropout) and dropout.training else 0.0
        dropped, p_used = self.shared_dropout(x, p) if p > 0 else (x, 0.0)
        dtype = result.dtype            # bf16 under autocast; the base layer's dtype otherwise
        a = self.lora_A[adapter].weight.to(dtype)                                   # (r, in)
        b = self.lora_B[adapter].weight.to(dtype)                                   # (out, r)
        xa = torch.nn.functional.linear(dropped.to(dtype), a)                       # (..., r)
        scale = self.scaling[adapter] / (1.0 - p_used)
        out = torch.addmm(result.reshape(-1, result.shape[-1]), xa.reshape(-1, xa.shape[-1]), b.t(), alpha=scale)
        return out.view(result.shape)

    def _plain_adapter(self, args, kwargs) -> str | None:
        """The one active adapter when this call can take the fast path, else None."""
        if args or kwargs or self.disable_adapters or self.merged or not ENABLED:
            return None
        adapters = self.active_adapters
        if len(adapters) != 1:
            return None
        adapter = adapters[0]
        if adapter not in self.lora_A or adapter in self.lora_variant or self.lora_B[adapter].bias is not None:
            return None
        if not isinstance(self.lora_dropout[adapter], (torch.nn.Dropout, torch.nn.Identity)):
            return None
        # DeepSpeed ZeRO-3 gathers a module's weights only when the module itself is called: reading
        # lora_A's weight here would find its empty partition
        if hasattr(self.lora_A[adapter].weight, "ds_id"):
            return None
        return adapter


def install(model) -> int:
    """Give every plain lora.Linear of `model` the fast forward, sharing one dropout cache;
    returns how many modules took it."""
    shared = SharedDropout()
    count = 0
    for module in model.modules():
        if type(module) is LoraLinear and type(module.base_layer) is torch.nn.Linear and not module.lora_variant:
            module.__class__ = FastLoraLinear
            module.shared_dropout = shared
            count += 1
    return count
