"""Training: the run config, the methods table, and the engine that runs a config to a model.

`config.RunConfig` is the one object the CLI, a YAML file and the web UI all build;
`run.train(cfg, ws)` runs it; `run.resume_run(ws, run)` continues a stopped or crashed run.
"""
