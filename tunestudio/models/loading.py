"""Load what a user wants to talk to: a base model alone, or a run's result.

A run's `final/` folder holds either a full model (config.json + model.safetensors) or a peft
adapter (adapter_config.json + adapter_model.safetensors); both carry the tokenizer the run
trained with, so its chat template is the one the model learned. Only safetensors are read, and
remote code runs only when the caller asks for it.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from pathlib import Path

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import read_json_or_none, recover_dir
from tunestudio.core.workspace import Workspace
from tunestudio.data.chat.template import ensure_chat_template


@dataclass
class RunInfo:
    """Where a run lives and what it was trained from (registry row + config.yaml)."""
    id: str
    name: str
    folder: Path
    final: Path
    base_model: str          # as written in the config: a models/ name, a path or a hub id
    method: str
    config: dict
    record: dict             # the registry row ({} when the run is only on disk)

    @property
    def is_adapter(self) -> bool:
        return (self.final / "adapter_config.json").is_file()


def find_run(ws: Workspace, ref: str) -> RunInfo:
    """A run by id or name (registry first, then a folder under training/runs)."""

    record: dict = {}
    if ws.db_path.is_file():
        try:
            record = registry.lookup_run(ws.db_path, ref)
        except UserError:
            record = {}
    if record:
        # the registry's output_dir is the run's final/ folder; the run folder holds config.yaml
        folder = ws.runs_dir / record["id"]
        out = Path(record.get("output_dir") or folder)
        if not folder.is_dir() and out.is_dir():
            folder = out.parent if out.name == "final" else out
    else:
        folder = ws.safe_join(ws.runs_dir, ref) if ws.runs_dir.is_dir() else ws.runs_dir / ref
        if not folder.is_dir():
            raise UserError(f"no run '{ref}' in this workspace: `tunestudio runs list` shows them", "run_not_found",
                            ref=ref)
    config = _read_config(folder)
    final = folder / "final"

    recover_dir(final)  # a crash between the two renames of a final/ replacement
    if not ((final / "config.json").is_file() or (final / "adapter_config.json").is_file()):
        status = record.get("status", "unknown")
        raise UserError(f"run '{ref}' has no finished model in {final} (status: {status}): "
                        "wait for it to complete, or pick another run", "run_no_model", ref=ref, folder=str(final),
                        status=status)
    # the registry has what the engine really loaded (a parent run's final/ for --from-run)
    base = record.get("base_model") or config.get("model")
    if not base and (final / "adapter_config.json").is_file():
        base = json.loads((final / "adapter_config.json").read_text()).get("base_model_name_or_path")
    return RunInfo(
        id=record.get("id") or folder.name, name=record.get("name") or folder.name, folder=folder,
        final=final, base_model=base or "", method=config.get("method") or record.get("method") or "full",
        config=config, record=record,
    )


def _read_config(folder: Path) -> dict:
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"{path} is damaged ({str(e).splitlines()[0][:160]}): restore it, or use the model in "
                        f"{folder / 'final'} with --model", "run_config_damaged", path=path,
                        final=folder / "final") from None
    return data if isinstance(data, dict) else {}


def resolve_model(ws: Workspace, name: str) -> str:
    """A model argument (models/ name, path or hub id) as something from_pretrained accepts."""
    if not name:
        raise UserError("no model given: use --model M or --run RUN", "eval_no_model")
    return ws.model_path_or_id(name)


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype_for(device: str):
    import torch

    # bf16 halves memory on GPUs that support it; on CPU fp32 is exact and, for the small models
    # run there, fast enough (fp16 on CPU is unusably slow: docs/dev/pitfalls.md).
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_tokenizer(source: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer


    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load a tokenizer from {source}: {e}", "tokenizer_unloadable", source=str(source),
                        detail=str(e).splitlines()[0][:200] if str(e) else type(e).__name__) from None
    ensure_chat_template(tok)
    if tok.pad_token is None:
        # batching needs a pad token; eos is safe because padded positions are masked out
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(source: str, device: str, trust_remote_code: bool):
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=_dtype_for(device), use_safetensors=True, trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError, SafetensorError) as e:  # missing, or damaged weights
        raise UserError(f"cannot load model {source}: {e}", "model_unloadable", source=str(source),
                        detail=str(e).splitlines()[0][:200] if str(e) else type(e).__name__) from None
    return model


def load_model(ws: Workspace, run: str | None = None, model: str | None = None, merge: bool = False,
               base: bool = False, device: str | None = None, trust_remote_code: bool = False):
    """Load a model and its tokenizer, ready for generation (eval mode, on `device`).

    `model`: a base model alone. `run`: that run's result; with `base=True`, the run's base model
    instead, but with the run's tokenizer so both sides see the same chat template. `merge` folds
    an adapter into the base weights (faster generation, what `export --merge` writes).
    Returns (model, tokenizer, info) with info = {kind, label, source, base_model, run_id, merged}.
    """
    if bool(run) == bool(model):
        raise UserError("give exactly one of --run RUN or --model M", "run_or_model")
    device = pick_device(device)
    if model:
        source = resolve_model(ws, model)
        tok = load_tokenizer(source, trust_remote_code)
        m = load_causal_lm(source, device, trust_remote_code)
        info = {"kind": "base", "label": model, "source": source, "base_model": model,
                "run_id": None, "merged": False}
        return _ready(m, tok, device), tok, info

    r = find_run(ws, run)
    tok = load_tokenizer(str(r.final), trust_remote_code)
    reasons = trained_to_reason(r)
    if base:
        source = resolve_model(ws, r.base_model)
        m = load_causal_lm(source, device, trust_remote_code)
        info = {"kind": "base", "label": f"base ({r.base_model})", "source": source,
                "base_model": r.base_model, "run_id": r.id, "merged": False}
        return _ready(m, tok, device), tok, info
    if not r.is_adapter:
        m = load_causal_lm(str(r.final), device, trust_remote_code)
        info = {"kind": "full", "label": f"run {r.name}", "source": str(r.final),
                "base_model": r.base_model, "run_id": r.id, "merged": False, "reasoning": reasons}
        return _ready(m, tok, device), tok, info

    m = load_adapter_model(ws, r, device, merge, trust_remote_code)
    info = {"kind": "adapter", "label": f"run {r.name}", "source": str(r.final),
            "base_model": r.base_model, "run_id": r.id, "merged": merge, "reasoning": reasons}
    return _ready(m, tok, device), tok, info


def run_metrics(r: RunInfo) -> dict:
    """The run's final metrics: the registry's, else its metrics.json ({} when neither is readable)."""

    m = r.record.get("metrics") or read_json_or_none(r.folder / "metrics.json")
    return m if isinstance(m, dict) else {}


def trained_to_reason(r: RunInfo) -> bool:
    """True when most of the run's training answers came with reasoning it trained on: chat then
    opens the reasoning block, as training did (turns.training_prompt)."""
    m = run_metrics(r)
    return 2 * int(m.get("reasoning_rows") or 0) > int(m.get("train_examples") or 0) > 0


def load_adapter_model(ws: Workspace, r: RunInfo, device: str, merge: bool, trust_remote_code: bool = False):
    """The run's base model with its peft adapter on top (merged into the weights when asked)."""
    from peft import PeftModel
    from safetensors import SafetensorError

    base = load_causal_lm(resolve_model(ws, r.base_model), device, trust_remote_code)
    try:
        m = PeftModel.from_pretrained(base, str(r.final))
    except (OSError, ValueError, SafetensorError) as e:
        raise UserError(f"cannot load the adapter in {r.final}: {e}", "adapter_unloadable", folder=r.final,
                        detail=str(e).splitlines()[0][:200] if str(e) else type(e).__name__) from None
    if merge:
        try:
            m = m.merge_and_unload()
        except AttributeError:
            # prompt / prefix tuning add virtual tokens, not weight deltas (docs/dev/pitfalls.md)
            raise UserError(f"run '{r.name}' used {r.method}, which has no weights to merge: "
                            "use it without --merge", "nothing_to_merge", run=r.name, method=r.method) from None
    return m


def _ready(model, tok, device: str):
    model.to(device)
    model.eval()
    # a tokenizer with a pad token the model config lacks would make generate() warn on every call
    gen = getattr(model, "generation_config", None)
    if gen is not None and gen.pad_token_id is None:
        gen.pad_token_id = tok.pad_token_id
    return model


def quiet_transformers() -> None:
    """Weight-loading progress bars on every model load would bury our own progress bar."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def release_memory() -> None:
    """After the caller drops its last reference to a model: give its memory back before the
    next one loads (base and fine-tuned take turns, never both at once)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
