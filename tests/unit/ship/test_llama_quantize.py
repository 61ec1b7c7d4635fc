"""A GGUF quantisation that needs llama-quantize, when it is missing, says how to get it and leaves
nothing behind."""

from __future__ import annotations

import pytest


def test_missing_llama_quantize_says_how(ship_ws, monkeypatch, tmp_path):
    from tunestudio.core.errors import UserError
    from tunestudio.ship import gguf, quantize

    monkeypatch.setattr(quantize, "find_tool", lambda: None)
    with pytest.raises(UserError) as e:
        gguf.export_gguf(ship_ws, "full-run", tmp_path / "q4", quant="q4_k_m")
    msg = str(e.value)
    assert "--build-quantize" in msg and "cmake" in msg and "llama-quantize MODEL-f16.gguf" in msg
    assert not (tmp_path / "q4").exists()

