"""The version of tunestudio (`tunestudio --version`, exported model cards)."""

__version__ = "0.1.0"
