"""tunestudio: fine-tune open language models from a web UI or the command line."""

__version__ = "0.1.0"
