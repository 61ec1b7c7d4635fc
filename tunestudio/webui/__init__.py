"""The web UI: Gradio 6 Blocks, one module per tab, a face over the same functions as the CLI.

No training, data or metric logic lives here: tabs call `tunestudio.data`, `tunestudio.train`,
`tunestudio.evaluate`, `tunestudio.runs` and `tunestudio.jobs.queue`, and show what they return.
"""
