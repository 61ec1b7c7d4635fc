"""CLI: `tunestudio models import FILE.gguf [--name NAME] [--dtype bf16|fp32] [--json]` and
`tunestudio models list [--json]`. The work is `tunestudio.models.gguf_import` and
`tunestudio.models.local`; this module only prints their results."""

from __future__ import annotations

from tunestudio.core.output import print_json
from tunestudio.models.gguf_import import import_gguf
from tunestudio.models.local import local_models
from tunestudio.models.memory import human_bytes


def register(subparsers, common) -> None:
    models = subparsers.add_parser("models", help="the base models under models/: import a GGUF file, list them")
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "import", parents=[common], help="turn a GGUF file (llama.cpp, Ollama) into a model folder under models/",
        description="Read a GGUF file through transformers (dequantising every tensor) and write models/NAME: "
                    "safetensors weights, the tokenizer with its chat template, a generation config that stops at "
                    "the end of a turn, and SOURCE.md naming the file and its sha256. A quantised file gives back "
                    "its rounding, not the original weights. Nothing is written unless the whole import succeeds; "
                    "an existing folder is never overwritten.",
    )
    p.add_argument("file", metavar="FILE.gguf", help="the GGUF file: a path, or a file name under models/")
    p.add_argument("--name", default=None,
                   help="the folder name under models/ (default: the file name without its quantisation suffix, "
                        "e.g. SmolLM2-135M-Instruct.Q4_1.gguf -> smollm2-135m-instruct)")
    p.add_argument("--dtype", default="bf16", help="precision of the saved weights: bf16 (default, half the "
                                                   "size) or fp32")
    p.add_argument("--json", action="store_true",
                   help='print {"model", "name", "folder", "architecture", "sha256", "quantisation", "dtype"}')
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("list", parents=[common], help="the model folders under models/ and the GGUF files there")
    p.add_argument("--json", action="store_true", help='print {"models": [...], "gguf_files": [...]}')
    p.set_defaults(func=cmd_list)


def cmd_import(args, ws) -> int:
    def started(path, name, info):
        if not args.json:
            print(f"importing {path.name} ({info['architecture']}, {', '.join(info['quantisation'])}) as "
                  f"models/{name}: dequantising every tensor, about 20 s per 100 MB ...", flush=True)

    result = import_gguf(ws, args.file, name=args.name, dtype=args.dtype, on_start=started)
    if args.json:
        print_json(result)
        return 0
    print(f"model    {result['name']}  ({result['architecture']}, {', '.join(result['quantisation'])} -> "
          f"{result['dtype']})")
    print(f"folder   {result['folder']}")
    print(f"sha256   {result['sha256']}")
    print(f"next: tunestudio chat --model {result['name']}   or   tunestudio train --model {result['name']} --dataset D")
    return 0


def cmd_list(args, ws) -> int:
    found = local_models(ws)
    if args.json:
        print_json(found)
        return 0
    if not found["models"] and not found["gguf_files"]:
        print(f"no models in {ws.models_dir}: `tunestudio demo` writes one, `tunestudio models import FILE.gguf` "
              "imports one")
        return 0
    width = max([len(m["name"]) for m in found["models"]] + [4])
    for m in found["models"]:
        source = f"from {m['gguf']['file']}" if m["gguf"] else ""
        print(f"{m['name']:<{width}}  {human_bytes(m['bytes']):>10}  {source}".rstrip())
    for f in found["gguf_files"]:
        then = f"imported as {f['imported_as']}" if f["imported_as"] else \
            f"import it with `tunestudio models import {f['file']}`"
        print(f"GGUF file {f['file']} ({human_bytes(f['bytes'])}): {then}")
    return 0
