"""CUDA out of memory during training: retry with a smaller micro-batch (the same effective batch
through more accumulation), and say what to change when even one row does not fit."""

from __future__ import annotations

import gc
from typing import Any, Callable

from tunestudio.core.errors import UserError
from tunestudio.models.memory import advice


def is_oom(exc: BaseException) -> bool:
    """True for CUDA out-of-memory, also when a library re-raised it as a RuntimeError."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower() and "cuda" in str(exc).lower()


def smaller_micro_batch(micro_batch: int, grad_accum: int) -> tuple[int, int]:
    """Half the micro-batch (rounded down to a divisor of the effective batch, so
    micro x accum stays exactly the same), and the accumulation that keeps it."""
    effective = micro_batch * grad_accum
    new = max(1, micro_batch // 2)
    while effective % new:
        new -= 1
    return new, effective // new


def _free_cuda_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_with_oom_retry(train_fn: Callable[[int, int], Any], micro_batch: int, grad_accum: int,
                       on_retry: Callable[[dict], None] | None = None, *, method: str | None = None,
                       max_length: int | None = None, grad_checkpointing: bool | None = None) -> Any:
    """Call `train_fn(micro_batch, grad_accum)`; on CUDA out-of-memory call it again with half
    the micro-batch and twice the accumulation (same effective batch), down to micro-batch 1.

    `train_fn` must be safe to call again: it builds its trainer/dataloader for the sizes it is
    given and restarts (or resumes from the run's last checkpoint). Its return value is returned.
    `on_retry(event)` is called before each retry with a JSON-able dict:
        {"attempt", "micro_batch", "grad_accum", "new_micro_batch", "new_grad_accum",
         "effective_batch", "error"}
    (the engine writes it as `events.emit("oom_retry", **event)`). When micro-batch 1 still runs out of memory it
    raises UserError with concrete advice (`method`, `max_length`, `grad_checkpointing` tailor it).

    Multi-process runs: an OOM on one rank leaves the others waiting in a collective, so only
    use this with world_size 1 (or have every rank agree before retrying).
    """
    if micro_batch < 1 or grad_accum < 1:
        raise UserError("batch size and gradient accumulation must be at least 1", "micro_batch_too_small")
    attempt = 0
    while True:
        error = None
        try:
            return train_fn(micro_batch, grad_accum)
        except Exception as e:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not is_oom(e):
                raise
            error = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        # Outside the except block: the traceback (and the tensors its frames hold) is gone,
        # so emptying the cache can actually return that memory.
        _free_cuda_memory()
        if micro_batch == 1:
            tip_list = advice(method=method, max_length=max_length, grad_checkpointing=grad_checkpointing, batch_size=1)
            tips = "; ".join(tip_list)
            raise UserError(   # the tips are CodedTexts: the web UI words each (engine.tip_*)
                f"CUDA ran out of memory even with a micro-batch of 1 ({error}). To fit: {tips}",
                "out_of_memory", error=error,
                tips=[{"code": tip.code, "message": str(tip), **tip.fields} for tip in tip_list])
        attempt += 1
        new_mb, new_ga = smaller_micro_batch(micro_batch, grad_accum)
        event = {"attempt": attempt, "micro_batch": micro_batch, "grad_accum": grad_accum,
                 "new_micro_batch": new_mb, "new_grad_accum": new_ga, "effective_batch": new_mb * new_ga,
                 "error": error}
        if on_retry is not None:
            on_retry(event)
        micro_batch, grad_accum = new_mb, new_ga
