"""The workspace bench/gpu_check.sh trains in: the demo data, a random Qwen2.5-0.5B-shaped model
(its 24 layers, GQA 14/2 heads, SwiGLU 4864; the demo tokenizer, so ~360M parameters without the
151k-token vocabulary) and long-text.jsonl, documents that fill 2,048-token blocks (for the
out-of-memory retry check).

    python bench/gpu_model.py WORKSPACE
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = "gpu-qwen0.5b"


def main(ws_root: str) -> None:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from bench.speed_setup import SHAPES
    from tunestudio.core.workspace import Workspace
    from tunestudio.demo import make_demo

    ws = Workspace(Path(ws_root))
    demo = make_demo(ws)
    tok = AutoTokenizer.from_pretrained(demo["model"])
    config = Qwen2Config(vocab_size=len(tok), max_position_embeddings=4096, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **SHAPES["qwen0.5b"])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    folder = ws.models_dir / NAME
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    words = [w for w in tok.get_vocab() if w.isalpha()] or ["word"]
    rng = random.Random(0)
    with (ws.datasets_dir / "long-text.jsonl").open("w", encoding="utf-8") as f:
        for _ in range(2048):
            f.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(2500))}) + "\n")
    params = sum(p.numel() for p in model.parameters())
    print(f"{folder}: {params / 1e6:.0f}M parameters; {ws.datasets_dir / 'long-text.jsonl'}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
