"""`tunestudio models import FILE.gguf`: a GGUF file becomes a Hugging Face model folder to fine-tune.

llama.cpp and Ollama users hold their models as GGUF files. transformers reads a GGUF of a family it
knows (`from_pretrained(folder, gguf_file=name)`, dequantising every tensor) but will not save what it
read ("quantized with gguf, not serializable"), so the weights go through a plain model built from the
same config. The result is an ordinary folder (safetensors, tokenizer with its chat template,
generation_config stopping on the turn end) and a SOURCE.md that says it was dequantised: a Q4 file
gives back its 4-bit rounding, not the original weights.

The folder is written under a temporary sibling name and renamed into place, so a failure (not a
GGUF, a truncated file, an architecture transformers cannot read) leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import gguf_model_name
from tunestudio.data.chat import turns
from tunestudio.data.chat.template import ensure_chat_template

DTYPES = ("bf16", "fp32")
MAGIC = b"GGUF"
# llama.cpp's names for architectures transformers spells otherwise (its GGUF loader maps them too)
ARCH_ALIASES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2"}
SOURCE_FILE = "SOURCE.md"
SOURCE_TITLE = "# Imported from a GGUF file"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_name(path: Path) -> str:
    """models/<name> for a file: its stem, lower case, without the quantisation suffix
    (SmolLM2-135M-Instruct.Q4_1.gguf -> smollm2-135m-instruct)."""
    return gguf_model_name(path)


def describe(path: Path) -> dict:
    """What the file holds, read from its header without loading a tensor: architecture, name,
    quantisation types. Raises UserError when it is not a GGUF or cannot be read whole."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file", "gguf_not_found", file=str(path))
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != MAGIC:
        raise UserError(f"{path}: not a GGUF file (it does not start with 'GGUF')", "gguf_not_gguf",
                        file=str(path))
    try:
        from gguf import GGUFReader
    except ImportError:
        raise UserError("reading a GGUF file needs the gguf package: pip install 'tunestudio[gguf]'",
                        "gguf_package_missing") from None
    try:
        reader = GGUFReader(str(path))
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as e:  # noqa: BLE001 - the reader's many ways of failing on a cut file
        detail = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"{path}: the GGUF file cannot be read whole (truncated or damaged: {detail})",
                        "gguf_damaged", file=str(path), detail=detail) from None
    if end > path.stat().st_size:
        raise UserError(f"{path}: the GGUF file is truncated ({path.stat().st_size:,} bytes, its tensors end at "
                        f"{end:,})", "gguf_truncated", file=str(path), size=path.stat().st_size, end=end)

    def field(key, default=None):
        f = reader.fields.get(key)
        if f is None or not f.data:
            return default
        value = f.parts[f.data[0]]
        return bytes(value).decode("utf-8", "replace") if value.dtype.kind == "u" and value.dtype.itemsize == 1 \
            else value.tolist()[0]

    return {"architecture": field("general.architecture", ""), "name": field("general.name", ""),
            "license": field("general.license", ""),
            "quantisation": sorted({t.tensor_type.name for t in reader.tensors}),
            "tensors": len(reader.tensors)}


def supported_architectures() -> list[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]


def find_file(ws, file) -> Path:
    """The GGUF file the user named: a path as given (from the current folder), else a file under
    models/ or in the workspace (`models/x.gguf` typed from elsewhere). A name found under models/
    is read only inside the workspace (Workspace.check_readable); a path given is the user's."""
    path = Path(file).expanduser()
    if path.exists() or path.is_absolute():
        return path
    for candidate in (ws.models_dir / path, ws.root / path):
        if candidate.exists():
            return ws.check_readable(candidate, str(file), "GGUF file")
    return path


def import_gguf(ws, file, name: str | None = None, dtype: str = "bf16", on_start=None) -> dict:
    """Write models/<name> from the GGUF `file`; returns {"model", "name", "folder", "architecture",
    "sha256", "quantisation", "dtype"}. Refuses an existing folder (nothing is overwritten).
    `on_start(file, name, info)` is called once every check has passed, as the slow part begins
    (what the CLI and the Model tab show while it runs)."""
    if dtype not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)} (got '{dtype}')", "unknown_choice",
                        option="--dtype", value=dtype, choices=list(DTYPES))
    path = find_file(ws, file)
    info = describe(path)
    arch = info["architecture"]
    if ARCH_ALIASES.get(arch, arch) not in supported_architectures():
        raise UserError(f"{path}: transformers cannot read a GGUF of architecture '{arch}' (it reads: "
                        f"{', '.join(supported_architectures())})", "gguf_unsupported_arch", file=str(path),
                        architecture=arch, supported=", ".join(supported_architectures()))
    name = name or default_name(path)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only", "model_name_invalid",
                        name=name)
    folder = ws.models_dir / name
    if folder.exists():
        raise UserError(f"{folder} already exists: give another --name, or remove it first", "model_exists",
                        folder=str(folder), name=name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{name}.import-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if on_start is not None:
        on_start(path, name, info)
    try:
        digest = sha256_of(path)
        _convert(path, tmp, dtype)
        (tmp / SOURCE_FILE).write_text(_source_text(path, digest, info, dtype), encoding="utf-8")
        os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"model": name, "name": name, "folder": str(folder), "architecture": arch, "sha256": digest,
            "quantisation": info["quantisation"], "dtype": dtype}


def _convert(path: Path, out: Path, dtype: str) -> None:
    """Dequantise `path` through transformers and save it as a plain model folder in `out`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer


    folder, name = str(path.parent), path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - transformers' GGUF reader raises plain errors
        detail = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"{path}: transformers could not read this GGUF ({detail})", "gguf_unreadable",
                        file=str(path), detail=detail) from None
    # transformers marks what it read as gguf-quantised and refuses to save it: build the same
    # architecture from a clean config and move the dequantised tensors over (every key matches).
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items()
                                     if k not in ("quantization_config", "transformers_version")})
    config.dtype = "bfloat16" if dtype == "bf16" else "float32"
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    model = model.to(torch.bfloat16 if dtype == "bf16" else torch.float32)
    del loaded
    ensure_chat_template(tokenizer)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # stop where the chat template ends an assistant turn (<|im_end|>, <|eot_id|>...), as every
    # folder tunestudio writes does
    turns.set_generation_eos(model, tokenizer)
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _source_text(path: Path, digest: str, info: dict, dtype: str) -> str:
    quant = ", ".join(info["quantisation"])
    return (f"{SOURCE_TITLE}\n\n"
            f"- file: `{path.name}` ({path.stat().st_size:,} bytes)\n"
            f"- sha256: `{digest}`\n"
            f"- architecture: {info['architecture']}; name in the file: {info['name'] or '(none)'}; "
            f"licence in the file: {info['license'] or '(none)'}\n"
            f"- tensor types in the file: {quant}\n"
            f"- imported: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `tunestudio models import`\n\n"
            f"The weights were dequantised from {quant} and saved as {dtype} safetensors: they carry the "
            f"file's quantisation rounding, not the original model's exact weights.\n")
