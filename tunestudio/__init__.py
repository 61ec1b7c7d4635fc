"""tunestudio: fine-tune open language models from a web UI or the command line."""

from tunestudio.core.version import __version__  # noqa: F401 - tunestudio.__version__, as users expect
