"""AdamW's step on a CPU: the for-loop (what the engine used before), foreach and fused kernels,
on the speed bench model's parameter shapes (full fine-tuning, ~21M; LoRA r=16 adapters).
Alternating rounds, median of the last six; then checks that fused is deterministic.

    python bench/adamw_step.py
"""
import os
import statistics
import time

import torch

torch.manual_seed(0)
def params(kind):
    if kind == "full":
        shapes = [(2048, 512)] * 2 + [(512, 512)] * 24 + [(1408, 512)] * 12 + [(512, 1408)] * 6 + [(512,)] * 13
    else:
        shapes = [(16, 512), (512, 16)] * 24 + [(16, 512), (1408, 16)] * 12 + [(16, 1408), (512, 16)] * 6
    ps = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    for p in ps: p.grad = torch.randn_like(p)
    return ps
res = {}
for kind in ("full", "lora"):
    opts = {}
    for impl in ("forloop", "foreach", "fused"):
        ps = params(kind)
        kw = {"foreach": False} if impl == "forloop" else {"foreach": True} if impl == "foreach" else {"fused": True}
        opts[impl] = torch.optim.AdamW(ps, lr=1e-3, **kw)
    times = {k: [] for k in opts}
    for r in range(8):
        for impl in (list(opts) if r % 2 == 0 else list(opts)[::-1]):
            t = time.perf_counter(); opts[impl].step(); times[impl].append(time.perf_counter() - t)
    base = statistics.median(times["forloop"][2:])
    for k, v in times.items():
        m = statistics.median(v[2:])
        print(f"{kind:5} {k:8} {m*1e3:8.2f} ms  ({base/m:.2f}x vs for-loop)")
# bit-for-bit: same inputs, two fresh fused runs give identical results
a, b = params("lora"), params("lora")
for x, y in zip(a, b): y.data.copy_(x.data); y.grad.copy_(x.grad)
oa, ob = torch.optim.AdamW(a, fused=True), torch.optim.AdamW(b, fused=True)
for _ in range(3): oa.step(); ob.step()
print("fused deterministic:", all(torch.equal(x, y) for x, y in zip(a, b)))
print("load", os.getloadavg()[0], "threads", torch.get_num_threads())
