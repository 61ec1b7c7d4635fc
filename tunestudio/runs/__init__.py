"""Runs: what was trained, from what, how it went. `query` returns dicts (CLI and web UI),
`commands` prints them."""

from tunestudio.runs.query import compare_runs, lineage, run_details, runs_table, split_summary

__all__ = ["compare_runs", "lineage", "run_details", "runs_table", "split_summary"]
