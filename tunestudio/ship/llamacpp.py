"""llama.cpp's own converter, fetched the way a user's machine can: from the pinned
`llama-cpp-python` source distribution on the package index.

That sdist vendors llama.cpp: `convert_hf_to_gguf.py`, its `conversion/` package, its `gguf-py`
and `models/ggml-vocab-*.gguf` (real tokenizers, used by the tests). It is downloaded once, straight
from the package index (else with `pip download`), into a cache ($TUNESTUDIO_LLAMA_CPP, default ~/.cache/tunestudio/llama-cpp),
checked against its pinned sha256, and only those folders are unpacked; nothing of it is ever
committed or imported into this process (the converter runs as a subprocess with its own gguf-py
first on the path).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import locked

VERSION = "0.3.36"  # llama-cpp-python; its vendor/llama.cpp is the converter we run
SDIST = f"llama_cpp_python-{VERSION}"
MEMBERS = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "models")
SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"  # of SDIST.tar.gz, as the index lists it
INDEX = "https://pypi.org/simple"  # unless $PIP_INDEX_URL names another
# `--no-binary llama-cpp-python`, not `:all:`: that also built every build dependency from source (12 min)
DOWNLOAD = f"pip download llama-cpp-python=={VERSION} --no-deps --no-binary llama-cpp-python"


def cache_dir() -> Path:
    return Path(os.environ.get("TUNESTUDIO_LLAMA_CPP") or Path.home() / ".cache" / "tunestudio" / "llama-cpp")


def vendor_dir(download: bool = True) -> Path:
    """The unpacked vendor/llama.cpp folder (convert_hf_to_gguf.py, conversion/, gguf-py/, models/).

    Downloads the sdist (77 MB, a few minutes on a slow link) the first time. Raises UserError
    with the manual command when the package index cannot be reached."""
    cache = cache_dir()
    vendor = cache / SDIST / "vendor" / "llama.cpp"
    if (vendor / "convert_hf_to_gguf.py").is_file() and (vendor / "gguf-py").is_dir():
        return vendor
    cache.mkdir(parents=True, exist_ok=True)
    with locked(cache):   # two exports (or test processes) at once: one downloads, the other waits
        if (vendor / "convert_hf_to_gguf.py").is_file() and (vendor / "gguf-py").is_dir():
            return vendor
        archive = cache / f"{SDIST}.tar.gz"
        if not archive.is_file():
            if not download:
                raise UserError(f"llama.cpp's converter is not in {cache}: run `{DOWNLOAD} -d {cache}`",
                                "converter_missing", folder=str(cache), command=f"{DOWNLOAD} -d {cache}")
            _download(cache, archive)
        _unpack(archive, cache)
    return vendor


def _download(cache: Path, archive: Path) -> None:
    """The sdist into `archive`, checked against SHA256: straight from the index (a second or so on a
    fast link); where that fails (a mirror pip is configured for, no JSON simple API), through pip,
    which also prepares the sdist's metadata in a build environment of its own (scikit-build-core)."""
    print(f"fetching llama.cpp's converter (llama-cpp-python {VERSION} sdist, 77 MB) once into {cache}...",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        _fetch_from_index(archive)
    except (OSError, http.client.HTTPException, ValueError, KeyError, StopIteration):
        # no network or index there, not a JSON simple API, the file not listed, a wrong digest
        _fetch_with_pip(cache, archive)
    print(f"fetched llama.cpp's converter in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def _fetch_from_index(archive: Path) -> None:
    """The file's URL from the index's simple API (PEP 691 JSON), then the file, no build of anything."""
    page = (os.environ.get("PIP_INDEX_URL") or INDEX).rstrip("/") + "/llama-cpp-python/"
    request = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        files = json.load(r)["files"]
    url = urljoin(page, next(f["url"] for f in files if f["filename"] == archive.name))
    part = archive.with_name(archive.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(part, "wb") as out:
            for block in iter(lambda: r.read(1 << 20), b""):
                out.write(block)
        _check_digest(part)
        os.replace(part, archive)
    finally:
        part.unlink(missing_ok=True)


def _fetch_with_pip(cache: Path, archive: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={VERSION}", "--no-deps",
                        "--no-binary", "llama-cpp-python", "-q", "-d", str(cache)], capture_output=True, text=True)
    if r.returncode != 0 or not archive.is_file():
        lines = [line for line in (r.stderr or r.stdout).strip().splitlines() if line.strip()]
        why = next((line.strip() for line in lines if "error" in line.lower()), lines[-1] if lines else "no output")
        raise UserError(f"could not download llama.cpp's converter ({why}): on a machine with the "
                        f"package index, run `{DOWNLOAD} -d {cache}` and copy the .tar.gz there",
                        "converter_download_failed", detail=why, command=f"{DOWNLOAD} -d {cache}", folder=str(cache))
    try:
        _check_digest(archive)
    except ValueError as e:
        archive.unlink()
        raise UserError(f"could not download llama.cpp's converter ({e})", "converter_download_failed",
                        detail=str(e), command=f"{DOWNLOAD} -d {cache}", folder=str(cache)) from None


def _check_digest(path: Path) -> None:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != SHA256:
        raise ValueError(f"{path.name} has sha256 {h.hexdigest()}, not the pinned {SHA256}")


def _unpack(archive: Path, cache: Path) -> None:
    prefix = f"{SDIST}/vendor/llama.cpp/"
    with tarfile.open(archive) as tar:
        wanted = [m for m in tar.getmembers()
                  if m.name.startswith(prefix) and m.name[len(prefix):].split("/")[0] in MEMBERS]
        try:
            tar.extractall(cache, members=wanted, filter="data")  # no links or paths out of the cache
        except TypeError:  # Python before 3.10.12 has no filter; the members were picked by name above
            tar.extractall(cache, members=wanted)


def vocab_file(name: str) -> Path:
    """A real tokenizer llama.cpp ships for its tests, e.g. vocab_file("qwen2")."""
    path = vendor_dir() / "models" / f"ggml-vocab-{name}.gguf"
    if not path.is_file():
        raise UserError(f"llama.cpp ships no vocabulary '{name}' ({path} is missing)", "llamacpp_no_vocab",
                        name=name, path=str(path))
    return path


def run_tool(args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a llama.cpp Python tool (path relative to vendor/llama.cpp) with its own gguf-py first
    on the path, as its README says to run it from a source checkout."""
    vendor = vendor_dir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(vendor / "gguf-py"), str(vendor)]),
           "NO_LOCAL_GGUF": "1"}  # the path above already puts the sdist's gguf-py first
    return subprocess.run([sys.executable, str(vendor / args[0]), *args[1:]], capture_output=True, text=True,
                          env=env, cwd=str(vendor), timeout=timeout)
