"""Records -> token ids and labels: chat rows, plain-text streams, preference rows, cached as Arrow."""
