"""One module (or folder) per tab of the web UI."""
