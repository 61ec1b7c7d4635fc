"""llama.cpp's `llama-quantize`, for the k-quants (q4_k_m, q5_k_m, q6_k, q4_0) the converter cannot
write itself: found on PATH, or built once with cmake from the same pinned llama-cpp-python source
the converter comes from (`tunestudio export RUN --format gguf --quant q4_k_m --build-quantize`).

The build unpacks the whole vendor/llama.cpp tree next to the converter's folders and builds only
the `llama-quantize` target, statically (no shared libraries to find later), without curl/OpenSSL,
tests, examples or the server: a C/C++ compiler and cmake are all it needs. The binary stays in
the cache ($TUNESTUDIO_LLAMA_CPP/llama_cpp_python-VERSION/vendor/llama.cpp/build-quantize/bin).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.ship.llamacpp import SDIST, cache_dir, vendor_dir

CMAKE_OPTIONS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_CURL=OFF",
                 "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                 "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DGGML_OPENMP=OFF")


def source_dir() -> Path:
    return cache_dir() / SDIST / "vendor" / "llama.cpp"


def built_tool() -> Path:
    return source_dir() / "build-quantize" / "bin" / "llama-quantize"


def find_tool() -> str | None:
    """llama-quantize on PATH, else the one built into the cache; None when neither exists."""
    on_path = shutil.which("llama-quantize")
    if on_path:
        return on_path
    built = built_tool()
    return str(built) if built.is_file() and os.access(built, os.X_OK) else None


def build_command() -> str:
    """The shell commands that build it by hand (what the error message tells the user)."""

    src = source_dir()
    return (f"tar xzf {cache_dir() / SDIST}.tar.gz -C {cache_dir()} && cmake -S {src} -B {src}/build-quantize "
            f"{' '.join(CMAKE_OPTIONS)} && cmake --build {src}/build-quantize --target llama-quantize -j")


def missing_message(quant: str, upper: str) -> str:
    return (f"--quant {quant} needs llama.cpp's llama-quantize, which is neither on PATH nor built yet. Add "
            f"--build-quantize to build it once from the pinned llama.cpp source (needs cmake and a C++ compiler; "
            f"minutes), or build it yourself: `{build_command()}`; or export --quant f16 and run "
            f"`llama-quantize MODEL-f16.gguf MODEL-{quant}.gguf {upper}`")


def _unpack_all() -> Path:
    """The full vendor/llama.cpp tree (the converter needs only part of it)."""

    vendor_dir()  # downloads the sdist when missing
    src = source_dir()
    if (src / "CMakeLists.txt").is_file() and (src / "tools" / "quantize").is_dir():
        return src
    prefix = f"{SDIST}/vendor/llama.cpp/"
    with tarfile.open(cache_dir() / f"{SDIST}.tar.gz") as tar:
        wanted = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        try:
            tar.extractall(cache_dir(), members=wanted, filter="data")
        except TypeError:  # Python before 3.10.12: the members were picked by name above
            tar.extractall(cache_dir(), members=wanted)
    return src


def build(jobs: int | None = None) -> dict:
    """Build llama-quantize into the cache (or say it is there already).

    Returns {tool, seconds (0 when already built), built (bool)}. Raises UserError when cmake or a
    compiler is missing, or the build fails (with the last lines of its output)."""
    tool = find_tool()
    if tool:
        return {"tool": tool, "seconds": 0.0, "built": False}
    if not shutil.which("cmake"):
        raise UserError("building llama-quantize needs cmake (e.g. `apt install cmake build-essential` or "
                        "`pip install cmake`), and a C++ compiler", "quantize_needs_cmake")
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        raise UserError("building llama-quantize needs a C++ compiler (e.g. `apt install build-essential`)",
                        "quantize_needs_compiler")
    started = time.perf_counter()
    src = _unpack_all()
    out = src / "build-quantize"
    print(f"building llama.cpp's llama-quantize in {out} (once; a few minutes)", file=sys.stderr, flush=True)
    steps = [["cmake", "-S", str(src), "-B", str(out), *CMAKE_OPTIONS],
             ["cmake", "--build", str(out), "--target", "llama-quantize", "-j", str(jobs or os.cpu_count() or 2)]]
    for step in steps:
        r = subprocess.run(step, capture_output=True, text=True)
        if r.returncode != 0:
            tail = "\n".join(((r.stderr or "") + (r.stdout or "")).strip().splitlines()[-8:])
            raise UserError(f"building llama-quantize failed at `{' '.join(step[:3])} ...` (exit {r.returncode}):\n"
                            f"{tail}\nThe build folder is {out}; delete it to start again", "quantize_build_failed",
                            step=" ".join(step[:3]), exit=r.returncode, detail=tail, folder=str(out))
    if not built_tool().is_file():
        raise UserError(f"the llama-quantize build finished but {built_tool()} is missing", "quantize_build_missing",
                        path=str(built_tool()))
    return {"tool": str(built_tool()), "seconds": round(time.perf_counter() - started, 1), "built": True}
