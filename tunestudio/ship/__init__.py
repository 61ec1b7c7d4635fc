"""Shipping a run: export (hf, merged, adapter, GGUF, quantised), the round-trip check, serving."""
