"""The run config: every training option with its default, help and choices; YAML and flags."""
