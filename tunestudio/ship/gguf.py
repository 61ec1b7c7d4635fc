"""`tunestudio export RUN --format gguf`: one .gguf file for llama.cpp / Ollama / LM Studio, made by
llama.cpp's own converter from the run's merged model, plus an Ollama `Modelfile` beside it.

What ships must stop where the model was taught to stop. The converter writes the tokenizer's eos;
a base model's eos (Qwen2.5's <|endoftext|>) is not where its chat turns end (<|im_end|>), so the
other stop ids of the run (turns.stop_token_ids, already in the export's generation config) are
written as llama.cpp's end-of-turn / end-of-message tokens, and the Modelfile lists every stop
token as `PARAMETER stop`. The chat template the run was trained with is embedded as
tokenizer.chat_template by the converter.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.models import loading
from tunestudio.ship import quantize
from tunestudio.ship.export import check_output, export_run, staged_output
from tunestudio.ship.llamacpp import VERSION, run_tool
from tunestudio.ship.modelfile import modelfile, run_system_prompt
from tunestudio.ship.quantize import build_command, find_tool, missing_message

OUTTYPES = ("f16", "q8_0", "bf16", "f32")           # the converter writes these itself
QUANTIZED = {"q4_k_m": "Q4_K_M", "q5_k_m": "Q5_K_M", "q6_k": "Q6_K", "q4_0": "Q4_0"}  # need llama-quantize
QUANTS = (*OUTTYPES, *QUANTIZED)
EXTRA_STOP_SLOTS = ("eot", "eom")                    # llama.cpp ends generation on these besides eos


def _quantize_missing(quant: str) -> UserError:
    """The error for a quantisation that needs llama-quantize when it is neither installed nor built."""

    return UserError(missing_message(quant, QUANTIZED[quant]), "quantize_missing", quant=quant,
                     upper=QUANTIZED[quant], command=build_command())


def metadata(path: str | Path) -> dict:
    """The GGUF keys that decide how it chats, and what it is called: {architecture, name, chat_template,
    eos, eot, eom, bos, file_type, tokens (vocabulary size), base_models ([{name, repo_url...}] from
    general.base_model.*, [] when none)}; other missing keys are None. Needs the `gguf` package."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def get(key):
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    tokens = reader.fields.get("tokenizer.ggml.tokens")
    bases = [{k.split(".", 3)[3]: get(k) for k in reader.fields if k.startswith(f"general.base_model.{i}.")}
             for i in range(get("general.base_model.count") or 0)]
    return {"architecture": get("general.architecture"), "name": get("general.name"), "base_models": bases,
            "chat_template": get("tokenizer.chat_template"),
            "bos": get("tokenizer.ggml.bos_token_id"), "eos": get("tokenizer.ggml.eos_token_id"),
            "eot": get("tokenizer.ggml.eot_token_id"), "eom": get("tokenizer.ggml.eom_token_id"),
            "file_type": get("general.file_type"), "tokens": len(tokens.data) if tokens is not None else None}


def stop_ids(meta: dict) -> list[int]:
    return [i for i in (meta.get("eos"), meta.get("eot"), meta.get("eom")) if i is not None]


def _convert(hf: Path, out: Path, outtype: str, base_model: str, name: str) -> None:
    """`hf` converted by llama.cpp, `name` its general.name. The converter also reads `hf`'s model card
    (its `base_model` becomes general.base_model.*, so export.model_card writes none for a local base)
    and takes the folder's name apart for general.basename/finetune/version: the caller names it
    after the run."""

    r = run_tool(["convert_hf_to_gguf.py", str(hf), "--outfile", str(out), "--outtype", outtype,
                  "--model-name", name])
    log = (r.stderr or "") + (r.stdout or "")
    if r.returncode == 0 and out.is_file():
        return
    if "pre-tokenizer was not recognized" in log:
        raise UserError(
            f"llama.cpp's converter (llama-cpp-python {VERSION}) does not know the tokenizer of base model "
            f"'{base_model}' (BPE pre-tokenizer not recognized), so it cannot make a GGUF that tokenizes like "
            "the run. The demo model's tokenizer is tunestudio's own: fine-tune a base model whose tokenizer "
            "llama.cpp supports (Qwen2/2.5/3, Llama 3, Mistral, Phi-3, Gemma, DeepSeek...) to ship GGUF, or "
            "export this run with --format hf", "gguf_tokenizer_unknown", base_model=base_model, version=VERSION)
    m = re.search(r"Model (\S+) is not supported", log)
    if m:
        raise UserError(f"llama.cpp's converter (llama-cpp-python {VERSION}) does not support the architecture "
                        f"{m.group(1)} of base model '{base_model}': export with --format hf instead",
                        "gguf_arch_unsupported", arch=m.group(1), base_model=base_model, version=VERSION)
    tail = "\n".join(log.strip().splitlines()[-6:])
    raise UserError(f"llama.cpp's converter failed on {hf} (exit {r.returncode}):\n{tail}", "gguf_convert_failed",
                    folder=str(hf), exit=r.returncode, detail=tail)


def _add_stop_tokens(path: Path, ids: list[int]) -> list[int]:
    """Write stop ids beyond the converter's eos as eot/eom (llama.cpp stops on both). Returns the ids
    that found no slot (more than three stop tokens)."""

    meta = metadata(path)
    extra = [i for i in ids if i not in stop_ids(meta)]
    if not extra:
        return []
    args, left = [], list(extra)
    for slot in EXTRA_STOP_SLOTS:
        if meta.get(slot) is None and left:
            args += ["--special-token-by-id", slot, str(left.pop(0))]
    if args:
        tmp = path.with_name(path.name + ".meta")
        r = run_tool(["gguf-py/gguf/scripts/gguf_new_metadata.py", str(path), str(tmp), *args, "--force"])
        if r.returncode != 0 or not tmp.is_file():
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-4:])
            raise UserError(f"llama.cpp's gguf_new_metadata could not add stop tokens {extra}: {tail}",
                            "gguf_stop_tokens_failed", ids=extra, detail=tail)
        tmp.replace(path)
    return left


def _quantize(f16: Path, out: Path, quant: str) -> None:
    tool = find_tool()
    if not tool:
        raise _quantize_missing(quant)
    r = subprocess.run([tool, str(f16), str(out), QUANTIZED[quant]], capture_output=True, text=True)
    if r.returncode != 0 or not out.is_file():
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-4:])
        raise UserError(f"llama-quantize failed (exit {r.returncode}): {tail}", "quantize_failed",
                        exit=r.returncode, detail=tail)


def export_gguf(ws, run: str, output: str | Path, quant: str = "f16", build_quantize: bool = False) -> dict:
    """Write `output`/<run>-<quant>.gguf, a Modelfile and a README (model card) for the run.

    Returns {output, kind: "gguf", file, quant, stop_tokens (text), stop_ids, files, base_model,
    run_id, seconds}. Raises UserError for an unknown run, a prompt/prefix-tuned adapter
    (nothing to merge), a tokenizer or architecture the converter does not know, a quantisation
    that needs llama-quantize when it is neither installed nor built (`build_quantize` builds it
    first from the pinned llama.cpp source, see evaluate.quantize), a failed build."""

    if quant not in QUANTS:
        raise UserError(f"--quant must be one of {', '.join(QUANTS)} (got '{quant}')", "unknown_choice",
                        option="--quant", value=quant, choices=list(QUANTS))
    if quant in QUANTIZED:
        if build_quantize:
            built = quantize.build()
            if built["built"]:
                print(f"built {built['tool']} in {built['seconds']} s", file=sys.stderr)
        elif not quantize.find_tool():
            raise _quantize_missing(quant)  # before minutes of merging and converting
    output = Path(output).expanduser().absolute()
    check_output(output)
    r = loading.find_run(ws, run)
    started = time.perf_counter()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", r.name).strip("-") or r.id
    scratch = output.parent / f".{output.name}.hf-{int(time.time() * 1000)}"
    hf = scratch / name  # the converter reads metadata from the folder's name: the run's, not a temporary one
    try:
        with staged_output(output) as tmp:
            export_run(ws, run, hf, merge=True)  # merged, with the turn end in generation_config
            path = tmp / f"{name}-{quant}.gguf"
            first = path if quant in OUTTYPES else tmp / f"{name}-f16.gguf"
            _convert(hf, first, quant if quant in OUTTYPES else "f16", r.base_model, r.name)
            gen = json.loads((hf / "generation_config.json").read_text())
            eos = gen.get("eos_token_id")
            ids = [i for i in (eos if isinstance(eos, list) else [eos]) if i is not None]
            unplaced = _add_stop_tokens(first, ids)
            if first != path:
                _quantize(first, path, quant)
                first.unlink()
            tok = loading.load_tokenizer(str(hf))
            stops = [tok.convert_ids_to_tokens(i) for i in ids]
            system = run_system_prompt(ws, r)
            (tmp / "Modelfile").write_text(modelfile(path.name, tok, stops, system), encoding="utf-8")
            card = (hf / "README.md").read_text(encoding="utf-8")
            (tmp / "README.md").write_text(card + gguf_card(path.name, quant, stops, unplaced), encoding="utf-8")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # the merged copy was only the converter's input
    return {"output": str(output), "kind": "gguf", "file": str(output / path.name), "quant": quant,
            "stop_tokens": stops, "stop_ids": ids, "unplaced_stop_ids": unplaced,
            "files": sorted(p.name for p in output.iterdir()), "base_model": r.base_model, "run_id": r.id,
            "seconds": round(time.perf_counter() - started, 2)}


def gguf_card(file: str, quant: str, stops: list[str], unplaced: list[int]) -> str:
    lines = ["", "## GGUF", f"`{file}` ({quant}), made by llama.cpp's `convert_hf_to_gguf.py` "
             f"(llama-cpp-python {VERSION} source) from the merged weights. Stop tokens: "
             + ", ".join(f"`{s}`" for s in stops) + ".", ""]
    if unplaced:
        lines += [f"Warning: stop ids {unplaced} have no slot in the GGUF metadata; the Modelfile lists them.", ""]
    lines += ["```sh", f"llama-cli -m {file} -cnv", "ollama create my-model -f Modelfile && ollama run my-model",
              "```", ""]
    return "\n".join(lines)
