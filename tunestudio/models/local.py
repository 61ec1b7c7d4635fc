"""The base models in the workspace's models/ folder, as `tunestudio models list` and the Model tab
show them: each model folder with its size on disk and, for one made by `models import`, the GGUF
file it came from (read back from its SOURCE.md); and the GGUF files there still to import."""

from __future__ import annotations

import re
from pathlib import Path

from tunestudio.models.gguf_import import SOURCE_FILE, SOURCE_TITLE


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def imported_from(folder: Path) -> dict | None:
    """{"file", "sha256"} of the GGUF file `folder` was imported from, or None (not an import)."""
    source = Path(folder) / SOURCE_FILE
    if not source.is_file():
        return None
    text = source.read_text(encoding="utf-8", errors="replace")
    if not text.startswith(SOURCE_TITLE):
        return None
    file, sha = re.search(r"^- file: `([^`]*)`", text, re.M), re.search(r"^- sha256: `([0-9a-f]+)`", text, re.M)
    return {"file": file.group(1) if file else "", "sha256": sha.group(1) if sha else ""}


def local_models(ws) -> dict:
    """{"models": [{"name", "folder", "bytes", "gguf"}], "gguf_files": [{"file", "bytes", "imported_as"}]}:
    the model folders under models/ (`gguf`: imported_from, or None) and the GGUF files found there
    (`imported_as`: the model folder made from a file of that name, or None)."""
    models = []
    for name in ws.list_models():
        folder = ws.models_dir / name
        models.append({"name": name, "folder": str(folder), "bytes": folder_bytes(folder),
                       "gguf": imported_from(folder)})
    imported = {m["gguf"]["file"]: m["name"] for m in models if m["gguf"]}
    files = [{"file": f"models/{rel}", "bytes": (ws.models_dir / rel).stat().st_size,
              "imported_as": imported.get(Path(rel).name)} for rel in ws.list_gguf_files()]
    return {"models": models, "gguf_files": files}
