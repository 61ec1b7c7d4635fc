"""llama.cpp's GGUF converter is fetched from the package index (its pinned source distribution)
without building anything (GGUF exports end to end: test_ship.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest


def _serve_index(root: Path):
    """A package index on localhost serving `root` (PEP 691 pages are plain files here)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_converter_is_fetched_from_the_index_without_building_anything(tmp_path, monkeypatch, capsys):
    """`pip download --no-binary :all:` built every build dependency of the sdist from source (12 min
    on a first export). The sdist now comes straight from the index's simple API, checked against its
    pinned sha256: no pip, no build; a file with another digest is refused, and pip is the fallback."""
    from gguf_helpers import qwen2_vocab

    from tunestudio.core.errors import UserError
    from tunestudio.ship import llamacpp

    qwen2_vocab()  # the real sdist, in the project's cache (downloaded once)
    real = llamacpp.cache_dir() / f"{llamacpp.SDIST}.tar.gz"
    index = tmp_path / "index"
    (index / "simple" / "llama-cpp-python").mkdir(parents=True)
    (index / "files").mkdir()
    (index / "files" / real.name).symlink_to(real)
    (index / "files" / "bad").mkdir()
    (index / "files" / "bad" / real.name).write_bytes(b"not the sdist")
    server = _serve_index(index)
    try:
        monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_port}/simple")
        monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy set for the index must not take localhost
        monkeypatch.delenv("NO_PROXY", raising=False)
        pip_calls = []

        def no_pip(cmd, **kw):
            pip_calls.append(cmd)
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

        monkeypatch.setattr(llamacpp.subprocess, "run", no_pip)
        page = index / "simple" / "llama-cpp-python" / "index.html"
        page.write_text(json.dumps({"files": [{"filename": real.name, "url": f"../../files/{real.name}"}]}))
        monkeypatch.setenv("TUNESTUDIO_LLAMA_CPP", str(tmp_path / "cache"))
        vendor = llamacpp.vendor_dir()
        assert (vendor / "convert_hf_to_gguf.py").is_file() and (vendor / "gguf-py").is_dir() and not pip_calls
        err = capsys.readouterr().err
        assert f"fetching llama.cpp's converter (llama-cpp-python {llamacpp.VERSION} sdist, 77 MB) once into " \
               f"{tmp_path / 'cache'}..." in err
        assert re.search(r"fetched llama.cpp's converter in \d+\.\d s", err)

        page.write_text(json.dumps({"files": [{"filename": real.name, "url": f"../../files/bad/{real.name}"}]}))
        monkeypatch.setenv("TUNESTUDIO_LLAMA_CPP", str(tmp_path / "cache2"))
        with pytest.raises(UserError, match="could not download llama.cpp's converter"):
            llamacpp.vendor_dir()
        assert len(pip_calls) == 1 and "--no-binary" in pip_calls[0] and ":all:" not in pip_calls[0]
        assert sorted(p.name for p in (tmp_path / "cache2").iterdir()) == [".lock"]  # no half or wrong file
    finally:
        server.shutdown()
        server.server_close()

