"""llama.cpp's own converter, fetched the way a user's machine can: from the pinned
`llama-cpp-python` source distribution on the package index.

That sdist vendors llama.cpp: `convert_hf_to_gguf.py`, its `conversion/` package, its `gguf-py`
and `models/ggml-vocab-*.gguf` (real tokenizers, used by the tests). It is downloaded once with
`pip download` into a cache ($TUNESTUDIO_LLAMA_CPP, default ~/.cache/tunestudio/llama-cpp) and only
those folders are unpacked; nothing of it is ever committed or imported into this process (the
converter runs as a subprocess with its own gguf-py first on the path).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from tunestudio.errors import UserError

VERSION = "0.3.36"  # llama-cpp-python; its vendor/llama.cpp is the converter we run
SDIST = f"llama_cpp_python-{VERSION}"
MEMBERS = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "models")
DOWNLOAD = f"pip download llama-cpp-python=={VERSION} --no-deps --no-binary :all:"


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
    with _locked(cache):   # two exports (or test processes) at once: one downloads, the other waits
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


@contextlib.contextmanager
def _locked(cache: Path):
    """An exclusive lock on the cache folder (released when the process ends, whatever happens)."""
    with open(cache / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _download(cache: Path, archive: Path) -> None:
    print(f"fetching llama.cpp's converter (llama-cpp-python {VERSION} source, 77 MB) into {cache}",
          file=sys.stderr)
    # pip reads the sdist's metadata with its build backend (scikit-build-core) in an isolated
    # environment it fetches itself; --no-build-isolation would need that backend installed here
    r = subprocess.run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={VERSION}", "--no-deps",
                        "--no-binary", ":all:", "-q", "-d", str(cache)], capture_output=True, text=True)
    if r.returncode != 0 or not archive.is_file():
        lines = [line for line in (r.stderr or r.stdout).strip().splitlines() if line.strip()]
        why = next((line.strip() for line in lines if "error" in line.lower()), lines[-1] if lines else "no output")
        raise UserError(f"could not download llama.cpp's converter ({why}): on a machine with the "
                        f"package index, run `{DOWNLOAD} -d {cache}` and copy the .tar.gz there",
                        "converter_download_failed", detail=why, command=f"{DOWNLOAD} -d {cache}", folder=str(cache))


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
