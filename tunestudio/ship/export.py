"""`tunestudio export RUN --output DIR`: a run's model as a folder anyone can load.

An adapter run exports its adapter as is (adapter_config.json + adapter_model.safetensors,
loadable with peft, or with AutoModelForCausalLM when peft is installed), or with --merge the
adapter folded into the base weights: a plain transformers model. Either way the folder has the
run's tokenizer (with the chat template it was trained with), a generation config and a model
card. Files are written to a hidden folder beside the target and renamed into place at the end,
so a failed export never leaves half a model behind.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import read_json_or_none
from tunestudio.core.version import __version__
from tunestudio.core.workspace import Workspace
from tunestudio.data.chat.turns import stop_token_ids
from tunestudio.evaluate.run_eval import list_evaluations
from tunestudio.models import loading
from tunestudio.runs.query import split_summary


def check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output} is a file: give a new or empty folder", "output_is_file",
                        folder=str(output))
    if output.is_dir() and any(output.iterdir()):
        raise UserError(f"--output {output} is not empty: give a new or empty folder (nothing was overwritten)",
                        "output_not_empty", folder=str(output))


def _generation_config(model, tok):
    """The decoding defaults the model should ship with: stop where the chat template ends a turn
    and at the tokenizer's eos (turns.stop_token_ids: a Qwen2.5 base model's eos is <|endoftext|>
    while its turns end with <|im_end|>), pad with its pad token, greedy unless the user asks (what
    `tunestudio chat` does)."""
    from transformers import GenerationConfig

    gen = GenerationConfig.from_model_config(model.config)
    ids = stop_token_ids(tok, model)
    gen.eos_token_id = ids if len(ids) > 1 else (ids[0] if ids else tok.eos_token_id)
    gen.pad_token_id = tok.pad_token_id
    if tok.bos_token_id is not None:
        gen.bos_token_id = tok.bos_token_id
    gen.do_sample = False
    return gen


@contextmanager
def staged_output(output: Path):
    """Yield a staging folder beside `output` that becomes `output` only when the block ends without
    an error (an empty `output` folder, checked by the caller, is replaced); on any error, an
    interrupt included, the staging folder is removed, so a half-written export is never left
    under the name the user asked for."""
    tmp = output.parent / f".{output.name}.partial-{int(time.time() * 1000)}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if output.is_dir():
            output.rmdir()  # checked empty by the caller
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_run(ws: Workspace, run: str, output: str | Path, merge: bool = False) -> dict:
    """Write the run's model to `output` (new or empty). Returns {output, kind, files, base_model, run_id}."""
    output = Path(output).expanduser()
    if not output.is_absolute():
        output = Path.cwd() / output
    check_output(output)
    r = loading.find_run(ws, run)
    if merge and not r.is_adapter:
        merge = False  # a full fine-tune is already plain weights: nothing to merge
    with staged_output(output) as tmp:
        tok = loading.load_tokenizer(str(r.final))
        if r.is_adapter:
            model = loading.load_adapter_model(ws, r, "cpu", merge)
            kind = "merged" if merge else "adapter"
        else:
            model = loading.load_causal_lm(str(r.final), "cpu", False)
            kind = "full"
        if kind != "adapter":
            model.config.use_cache = True  # Trainer saves use_cache=False; generation wants it on
        gen = _generation_config(model.get_base_model() if kind == "adapter" else model, tok)
        if kind != "adapter":
            model.generation_config = gen  # saved with the weights
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        gen.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(ws, r, kind, loading.count_parameters(model)), encoding="utf-8")
        del model
    return {"output": str(output), "kind": kind, "files": sorted(p.name for p in output.iterdir()),
            "base_model": r.base_model, "run_id": r.id}


# ---- model card --------------------------------------------------------------------------------

def _lineage(ws: Workspace, r: loading.RunInfo) -> list[str]:
    """This run, its parent run, that run's parent... then the base model."""

    chain = [f"run `{r.name}` ({r.id}, method {r.method})"]
    parent = r.record.get("parent_id") or r.config.get("from_run")
    if parent and ws.db_path.is_file():
        conn = registry.connect(ws.db_path)
        try:
            seen = {r.id}
            while parent and parent not in seen and len(chain) < 20:
                try:
                    p = registry.get_run(conn, parent)
                except UserError:
                    chain.append(f"run {parent} (no longer in the registry)")
                    break
                seen.add(p["id"])
                chain.append(f"run `{p['name']}` ({p['id']}, method {p.get('method')})")
                parent = p.get("parent_id")
        finally:
            conn.close()
    local = local_base(ws, r.base_model)
    chain.append(f"local model `{local_label(ws, local)}`" if local else f"base model `{r.base_model}`")
    return chain


def local_base(ws: Workspace, name: str) -> Path | None:
    """The folder of a base model given as a models/ name or a path (as loading resolves it); None
    for a hub id. A path whose folder is gone is still a path, never a hub id."""
    if not name:
        return None
    for candidate in (ws.models_dir / name, ws.root / name, Path(name).expanduser()):
        if candidate.is_dir():
            return candidate
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        return Path(name).expanduser()
    return None


def local_label(ws: Workspace, folder: Path) -> str:
    """How a card names a local model: its models/ name, else its place in the workspace, else the
    folder's name (a shared card should not carry the paths of the machine it was made on)."""
    folder = folder.resolve()
    if folder.parent == ws.models_dir.resolve():
        return folder.name
    try:
        return str(folder.relative_to(ws.root.resolve()))
    except ValueError:
        return folder.name


def _base_prose(ws: Workspace, r: loading.RunInfo) -> tuple[list[str], str, list[str]]:
    """(front-matter lines, how the first sentence names the base, a Base model section). A hub id
    is the card's `base_model`; a local folder is not one (the Hub and llama.cpp's converter would
    read its path as a repository), so it is named in prose, with what its SOURCE.md says."""
    local = local_base(ws, r.base_model)
    if not local:
        return [f"base_model: {json.dumps(str(r.base_model))}"], f"`{r.base_model}`", []
    label = local_label(ws, local)
    section = ["## Base model", f"`{label}` is a local model folder, not a model on the Hugging Face Hub."]
    source = local / "SOURCE.md"
    if source.is_file():
        text = source.read_text(encoding="utf-8", errors="replace").strip()
        section += ["Its SOURCE.md says:", "", *[f"> {line}".rstrip() for line in text.splitlines()]]
    return [], f"the local model `{label}`", section + [""]


def _latest_evaluation(ws: Workspace, run_id: str) -> dict | None:
    if not ws.db_path.is_file():
        return None

    evals = list_evaluations(ws, run_id)
    return evals[0] if evals else None


def _table(d: dict) -> str:
    rows = [f"| {k} | {json.dumps(v) if isinstance(v, (dict, list)) else v} |" for k, v in d.items()]
    return "| | |\n|---|---|\n" + "\n".join(rows) if rows else "(none recorded)"


def model_card(ws: Workspace, r: loading.RunInfo, kind: str, params: int) -> str:
    split = r.record.get("split") or {}
    if not split and (r.folder / "split.json").is_file():
        split = read_json_or_none(r.folder / "split.json") or {}
    dataset = r.record.get("dataset") or split.get("dataset") or r.config.get("dataset") or "unknown"
    data_hash = r.record.get("dataset_hash") or split.get("hash") or "unknown"
    rows = (split_summary(split) or {}).get("rows") or {}  # the registry keeps counts, split.json the ids
    hyper = {k: v for k, v in r.config.items() if k not in ("model", "dataset") and not isinstance(v, dict)}
    hyper.update({f"{k}.{kk}": vv for k, v in r.config.items() if isinstance(v, dict) for kk, vv in v.items()})
    evaluation = _latest_evaluation(ws, r.id)
    library = "peft" if kind == "adapter" else "transformers"
    load = ("from peft import AutoPeftModelForCausalLM\nmodel = AutoPeftModelForCausalLM.from_pretrained(\"PATH\")"
            if kind == "adapter" else
            "from transformers import AutoModelForCausalLM\nmodel = AutoModelForCausalLM.from_pretrained(\"PATH\")")
    front, base, base_section = _base_prose(ws, r)
    parts = [
        "---",
        *front,
        f"library_name: {library}",
        f"tags: [tunestudio, {r.method}, fine-tuned]",
        "---",
        f"# {r.name}",
        "",
        f"Fine-tuned from {base} with the **{r.method}** method using tunestudio {__version__}. "
        f"This export holds {'the adapter only (it needs the base model)' if kind == 'adapter' else 'full weights'}"
        f"{' (adapter merged into the base weights)' if kind == 'merged' else ''}; {params:,} parameters"
        f"{' including the base' if kind == 'adapter' else ''}.",
        "",
        *base_section,
        "## Data",
        f"- dataset: `{dataset}`",
        f"- content hash (sha256): `{data_hash}`",
        f"- rows per split: {json.dumps(rows) if rows else 'unknown'}"
        + (f" (seed {split['seed']})" if "seed" in split else ""),
        "",
        "## Hyper-parameters",
        _table(hyper),
        "",
        "## Metrics",
        "Training:",
        "",
        _table(loading.run_metrics(r)),
    ]
    if evaluation:
        parts += ["", f"Evaluation on `{evaluation['dataset']}` ({evaluation['split']}, {evaluation['n']} examples):",
                  "", _table(evaluation["metrics"] or {})]
        if evaluation.get("base_metrics"):
            parts += ["", "Base model on the same rows:", "", _table(evaluation["base_metrics"])]
    parts += ["", "## Lineage", *[f"{i + 1}. {x}" for i, x in enumerate(_lineage(ws, r))],
              f"\nExported {time.strftime('%Y-%m-%d %H:%M:%S')} as {kind}.",
              "", "## Use", "```python", load,
              "from transformers import AutoTokenizer\ntokenizer = AutoTokenizer.from_pretrained(\"PATH\")",
              "messages = [{\"role\": \"user\", \"content\": \"...\"}]",
              "ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\")",
              "print(tokenizer.decode(model.generate(**ids, max_new_tokens=64)[0]))", "```", ""]
    return "\n".join(parts)
