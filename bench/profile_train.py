"""Where a training step's time goes: torch.profiler over a few steps of the speed bench's
tunestudio side (bench/train_speed.py: same model, data and defaults).

    python bench/profile_train.py                  # 2 steps to warm up, 4 profiled
    python bench/profile_train.py --active 8 --set precision=fp32 --rows 40

Prints the per-op table (self CPU time, top --rows ops) and the share of the profiled time spent
in matmuls (aten::mm/addmm/bmm/linear backward), attention, the optimizer, and the rest; writes a
Chrome trace (open it in chrome://tracing or https://ui.perfetto.dev) with --trace FILE.
docs/profile.md holds one such table and what it says.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.speed_setup import WORKLOADS  # noqa: E402 (after the path: run as a script)

GROUPS = {  # op names (a trailing * is a prefix) -> what they are, for the summary (first match wins)
    "matmul (linear layers, forward and backward)": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul",
                                                     "aten::linear", "MmBackward0", "AddmmBackward0"),
    "attention (SDPA)": ("aten::_scaled_dot_product*", "aten::scaled_dot_product*",
                         "ScaledDotProduct*"),
    "optimizer (AdamW; its mul/add count under elementwise)": (
        "Optimizer.step*", "Optimizer.zero_grad*", "aten::_foreach*", "aten::_fused_adam*", "aten::lerp_",
        "aten::addcdiv_", "aten::addcmul_", "aten::sqrt"),
    "elementwise and norms (silu, mul, add, pow, mean, rsqrt, ...)": (
        "aten::mul", "aten::add", "aten::silu", "aten::pow", "aten::mean", "aten::rsqrt", "aten::neg", "aten::cat",
        "aten::div", "aten::sum", "aten::sigmoid", "aten::silu_backward", "aten::embedding*", "aten::cos", "aten::sin",
        "aten::mul_", "aten::add_", "aten::div_", "aten::fill_", "aten::zero_", "aten::where", "aten::sub",
        "aten::threshold_backward", "aten::masked_fill*"),
    "copies, dtype casts, layout": ("aten::copy_", "aten::to", "aten::_to_copy", "aten::clone", "aten::contiguous",
                                     "aten::empty*", "aten::as_strided*", "aten::view", "aten::reshape",
                                     "aten::transpose", "aten::t", "aten::index*", "aten::slice", "aten::select"),
    "loss (cross entropy; the head's matmul counts under matmul)": (
        "aten::_log_softmax*", "aten::nll_loss*", "aten::log_softmax", "aten::cross_entropy*", "LinearCrossEntropy*",
        "aten::logsumexp", "aten::exp_", "aten::argmax", "aten::gather"),
    # peft's bernoulli_ masks; train/fast_lora.py's random bits and their compare
    "dropout (LoRA input; its mul counts under elementwise)": (
        "aten::dropout", "aten::native_dropout*", "aten::bernoulli*", "aten::random_", "aten::ge"),
}


def _matches(key: str, name: str) -> bool:
    return key.startswith(name[:-1]) if name.endswith("*") else key == name


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--warmup", type=int, default=2, help="steps run before profiling")
    p.add_argument("--active", type=int, default=4, help="steps profiled")
    p.add_argument("--rows", type=int, default=25, help="ops in the table")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a run option, e.g. precision=fp32")
    p.add_argument("--workload", choices=WORKLOADS, default="bench", help="bench/train_speed.py's workload")
    p.add_argument("--variant", action="append", default=[], choices=("peft-lora", "plain-loss"),
                   help="peft's LoRA forward, or the loss over all logits at once (bench/train_speed.py's variants)")
    p.add_argument("--trace", default="", help="also write a Chrome trace to this file")
    args = p.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    from bench.speed_setup import hparams, setup
    from tunestudio.config.run_config import RunConfig, coerce
    from tunestudio.core.workspace import Workspace
    from tunestudio.train import objectives, sft
    from tunestudio.train import run as engine

    prof = profile(activities=[ProfilerActivity.CPU], record_shapes=False)

    class Step(TrainerCallback):  # profile optimizer steps warmup+1 .. warmup+active (hooks included)
        def on_train_begin(self, args_, state, control, **k):
            if args.warmup == 0:
                prof.start()

        def on_step_end(self, args_, state, control, **k):
            if state.global_step == args.warmup and args.warmup:
                prof.start()
            elif state.global_step == args.warmup + args.active:
                prof.stop()

    def with_profiler(*a, **k):
        trainer = sft.build_trainer(*a, **k)
        trainer.add_callback(Step())
        return trainer

    # the SFT row of the objectives table builds its trainer with the profiling callback added
    objectives.OBJECTIVES["sft"] = dataclasses.replace(objectives.OBJECTIVES["sft"], build=with_profiler)
    from tunestudio.train import fast_lora
    from tunestudio.train.trainer import TuneTrainer

    fast_lora.ENABLED = "peft-lora" not in args.variant      # the bench's variants (bench/train_speed.py)
    TuneTrainer.fused_loss = "plain-loss" not in args.variant
    hp = hparams(args.workload)
    for item in args.set:
        key, value = item.split("=", 1)
        hp[key] = coerce(key, value)
    with tempfile.TemporaryDirectory(prefix="tunestudio-profile-") as work:
        info = setup(Path(work), workload=args.workload)
        cfg = RunConfig(model=info["model_name"], dataset="bench-chat.jsonl", method=info["method"], val_split=0.0,
                        test_split=0.0, replay=0.0,
                        max_length=args.max_length, max_steps=args.warmup + args.active, logging_steps=5, **hp)
        engine.train(cfg, Workspace(Path(info["ws"])))
    events = prof.key_averages()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}; "
          f"workload {args.workload}; {args.active} steps profiled after {args.warmup}; options "
          f"{' '.join(args.set + args.variant) or 'defaults'}\n")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=42))
    total = sum(e.self_cpu_time_total for e in events)
    shares: dict[str, float] = {}
    for e in events:
        group = next((g for g, names in GROUPS.items() if any(_matches(e.key, n) for n in names)),
                     "other (autograd nodes, Python ops, data)")
        shares[group] = shares.get(group, 0.0) + e.self_cpu_time_total
    print("where the time goes (share of self CPU time):")
    for group, t in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"  {t / total:6.1%}  {group}")
    if args.trace:
        prof.export_chrome_trace(args.trace)


if __name__ == "__main__":
    main()
