"""The Runs tab: the registry as a table, comparisons, overlays, shipping and sweeps."""
