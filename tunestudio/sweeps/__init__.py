"""Hyper-parameter sweeps with Optuna: the sweep file, the search, the background process."""
