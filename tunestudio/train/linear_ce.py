"""Cross-entropy through the output layer, a chunk of positions at a time, never holding all logits.

A large vocabulary makes the logits the largest tensors of a step: SmolLM2's 49,152 tokens x 1,000
trained positions are 197 MB in fp32, and the plain path holds them in bf16, in fp32, their
log-softmax and their gradient at once. Here the output layer's matmul, the loss and its gradient
run together on chunks of positions (as Liger's and Unsloth's fused linear cross-entropy do on
GPUs, here in plain PyTorch): each chunk's logits live only while their loss and gradient are taken,
and backward only scales the gradients computed in forward. Same loss, same gradients (fp32 softmax
over bf16 logits under autocast, as the plain path computes them).
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 23   # logits per chunk: 8M fp32 = 32 MB, whatever the vocabulary


class LinearCrossEntropy(torch.autograd.Function):
    """sum over rows of -log softmax(hidden @ weight.T + bias)[target], and the rows whose argmax is
    the target. hidden (N, d), weight (V, d), bias (V,) or None, targets (N,) with no ignored rows;
    the matmuls in `dtype` (autocast's), the softmax in fp32."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, dtype):
        n, vocab = hidden.shape[0], weight.shape[0]
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = bias is not None and ctx.needs_input_grad[2]
        w = weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        grad_b = torch.zeros(vocab, dtype=torch.float32, device=weight.device) if need_b else None
        loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
        correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        step = max(1, CHUNK_ELEMENTS // vocab)
        for start in range(0, n, step):
            h = hidden[start:start + step].to(dtype)                                    # (c, d)
            t = targets[start:start + step]                                             # (c,)
            logits = (h @ w.t() if b is None else torch.addmm(b, h, w.t())).float()   # (c, V)
            correct += (logits.argmax(-1) == t).sum()
            lse = torch.logsumexp(logits, dim=-1)                                       # (c,)
            loss += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
            if not (need_h or need_w or need_b):
                continue
            # d loss / d logits = softmax - one_hot(target), made in place over the logits
            g = logits.sub_(lse[:, None]).exp_()
            g[torch.arange(len(t), device=g.device), t] -= 1.0
            if need_b:
                grad_b += g.sum(0)
            g = g.to(dtype)
            if need_h:
                grad_h[start:start + step] = g @ w
            if need_w:
                grad_w += (g.t() @ h).float()
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, _grad_correct):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        weight_dtype, bias_dtype = ctx.dtypes
        return (None if grad_h is None else grad_h * grad_loss.to(grad_h.dtype),
                None if grad_w is None else (grad_w * grad_loss).to(weight_dtype),
                None if grad_b is None else (grad_b * grad_loss).to(bias_dtype), None, None)


def linear_cross_entropy(hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor):
    """(summed loss, correct count) of `head` over `hidden` (N, d) against `targets` (N,)."""
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    with torch.autocast(device, enabled=False):
        return LinearCrossEntropy.apply(hidden, head.weight, head.bias, targets, dtype)
