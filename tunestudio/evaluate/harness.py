"""`eval --benchmark`, `bench-models --benchmark`: standard benchmarks through EleutherAI's
lm-evaluation-harness, run as a library (lm_eval.simple_evaluate on its HF model class, HFLM).

The model is the one tunestudio loads itself (models/loading.py: a run's full weights, or its base
with the run's adapter on top, or a base model; safetensors only, no remote code), handed to HFLM
as a model object with its tokenizer, so the harness scores exactly what `eval` and `chat` use.
For a run, its base goes through the same tasks with the same settings (few-shot count, limit,
batch size, seeds), one model in memory at a time; each metric keeps lm-eval's standard error
(`acc_stderr`), and the table gives each difference with its own error (benchmarks.py).

lm-eval is heavy (its import takes seconds) and imported here only, inside functions.
"""

from __future__ import annotations

import difflib
import logging
import time
from pathlib import Path

from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import write_json
from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import benchmarks as B
from tunestudio.evaluate import guard as G
from tunestudio.evaluate.run_eval import eval_folder, record_eval
from tunestudio.models import loading


def task_specs(ws: Workspace, tasks) -> tuple[list, list[str]]:
    """What simple_evaluate is given for each `--benchmark` item (a task name, or a local task file's
    config dict) and the names the results carry."""
    specs, names = [], []
    for t in B.parse_tasks(tasks):
        if B.is_task_file(t):
            config = B.read_task_file(ws, t)
            specs.append(config)
            names.append(str(config["task"]))
        else:
            specs.append(t)
            names.append(t)
    return specs, names


def task_manager(specs: list):
    """lm-eval's task index: its own task folders only when a task is named (indexing them takes
    seconds), none for local task files alone."""
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.ERROR)   # its INFO/WARNING lines would bury ours
    return TaskManager(include_defaults=any(isinstance(s, str) for s in specs))


def check_tasks(specs: list, names: list[str], manager) -> None:
    """Build each task once before any model loads: an unknown name, or data that cannot be read or
    fetched (offline, a bad file), is one UserError naming the task."""
    for spec, name in zip(specs, names):
        try:
            manager.load([spec])
        except Exception as e:  # noqa: BLE001 - lm-eval and datasets raise many kinds; each is the task's fault
            detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            if isinstance(spec, str) and spec not in manager.all_tasks:
                close = difflib.get_close_matches(spec, manager.all_tasks, 3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise UserError(f"unknown lm-eval task '{spec}'{hint}: give a task name lm-eval knows or a task "
                                "YAML file", "benchmark_unknown_task", task=spec, hint=hint) from None
            if isinstance(spec, dict):   # a local task file: its data, not the network, is at fault
                files = (spec.get("dataset_kwargs") or {}).get("data_files")
                files = ", ".join(_flat(files)) or "its data"
                raise UserError(f"benchmark task '{name}' could not be loaded from {files}: {detail} (check each "
                                "row against the task's doc_to_text, doc_to_choice and doc_to_target)",
                                "benchmark_local_unloadable", task=name, detail=detail, files=files) from None
            raise UserError(f"benchmark task '{name}' could not be loaded: {detail} (offline, a task whose data is "
                            "on the Hub cannot run: use a local task file)", "benchmark_task_unloadable",
                            task=name, detail=detail) from None


def _flat(files) -> list[str]:
    """The paths of a `data_files` value (a path, a list, or {split: path or list})."""
    if isinstance(files, dict):
        return [f for v in files.values() for f in _flat(v)]
    if isinstance(files, list):
        return [f for v in files for f in _flat(v)]
    return [str(files)] if files else []


def settings_of(num_fewshot: int | None, limit: int | None, batch_size: int, seed: int | None) -> dict:
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit})", "option_at_least", option="--limit", value=limit,
                        least=1)
    if num_fewshot is not None and num_fewshot < 0:
        raise UserError(f"--num-fewshot must be at least 0 (got {num_fewshot})", "option_at_least",
                        option="--num-fewshot", value=num_fewshot, least=0)
    return {"num_fewshot": num_fewshot, "limit": limit, "batch_size": batch_size, "seed": seed}


def simple_evaluate_kwargs(settings: dict) -> dict:
    """simple_evaluate's arguments for `settings`; a seed sets all four of its seeds, none keeps its defaults."""
    kw = {"num_fewshot": settings["num_fewshot"], "limit": settings["limit"], "batch_size": settings["batch_size"],
          "log_samples": False}
    if settings.get("seed") is not None:
        kw.update(random_seed=settings["seed"], numpy_random_seed=settings["seed"],
                  torch_random_seed=settings["seed"], fewshot_random_seed=settings["seed"])
    return kw


def score_model(model, tok, specs: list, manager, settings: dict) -> dict:
    """One model (already loaded) through the tasks: benchmarks.side_metrics of simple_evaluate."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=settings["batch_size"])
    results = simple_evaluate(model=lm, tasks=list(specs), task_manager=manager, **simple_evaluate_kwargs(settings))
    return B.side_metrics(results)


def run_benchmarks(ws: Workspace, tasks, run: str | None = None, model: str | None = None,
                   num_fewshot: int | None = None, limit: int | None = None, batch_size: int = 8,
                   seed: int | None = None, save: bool = True, device: str | None = None,
                   trust_remote_code: bool = False) -> dict:
    """The tasks on a model, or on a run and its base. Returns {tasks, model, run_id, settings,
    results: {task: {n, metrics: {acc, acc_stderr, ...}, higher_is_better}}, [base_results], table
    (benchmarks.table: Δ ± error per task and metric), seconds, [output_dir, files]}; saved to the
    run's eval/ folder (or training/evals/<model>/) and the registry's evaluations."""
    if bool(run) == bool(model):
        raise UserError("give exactly one of --run RUN or --model M", "run_or_model")
    settings = settings_of(num_fewshot, limit, batch_size, seed)
    specs, names = task_specs(ws, tasks)
    manager = task_manager(specs)
    check_tasks(specs, names, manager)
    run_info = loading.find_run(ws, run) if run else None
    start = time.perf_counter()
    sides, labels = {}, {}
    for label, kw in [("tuned", dict(run=run, model=model)), *([("base", dict(run=run, base=True))] if run else [])]:
        m, tok, info = loading.load_model(ws, device=device, trust_remote_code=trust_remote_code, **kw)
        sides[label], labels[label] = score_model(m, tok, specs, manager, settings), info["label"]
        del m
        loading.release_memory()
    out = {"tasks": names, "model": labels["tuned"], "run_id": run_info.id if run_info else None,
           "settings": settings, "results": sides["tuned"], "seconds": time.perf_counter() - start}
    if "base" in sides:
        out["base_model"], out["base_results"] = labels["base"], sides["base"]
    out["table"] = B.table(sides["tuned"], sides.get("base"))
    if save:
        folder = eval_folder(ws, run_info, model)
        folder.mkdir(parents=True, exist_ok=True)
        out["files"] = {"metrics": str(folder / "benchmarks.json"), "html": str(folder / "report.html")}
        out["output_dir"] = str(folder)
        write_json(Path(out["files"]["metrics"]), out)
        Path(out["files"]["html"]).write_text(B.report_html(out["table"], f"Benchmarks of {out['model']}", settings),
                                              encoding="utf-8")
        record_eval(ws, {"run_id": out["run_id"], "model": out["model"], "dataset": B.registry_name(names),
                         "split": "benchmark", "n": sum(s.get("n") or 0 for s in sides["tuned"].values()),
                         "metrics": B.flat(sides["tuned"]),
                         **({"base_metrics": B.flat(sides["base"])} if "base" in sides else {})}, folder)
    return out


def benchmark_guard(ws: Workspace, run: str, task: str, limit: int | None = None, batch_size: int = 8) -> dict:
    """The forgetting check on a benchmark task (`eval --guard-benchmark`): the run and its base on
    the task, the verdict by guard.benchmark_summary (its warnings under "warnings", for evaluate)."""
    if not run:
        raise UserError("--guard-benchmark needs --run RUN (it compares the run with its base)",
                        "guard_benchmark_needs_run")
    out = run_benchmarks(ws, [task], run=run, limit=limit, batch_size=batch_size, save=False)
    warnings: list = []
    g = G.benchmark_summary(", ".join(out["tasks"]), out["table"], warnings)
    return {**g, "warnings": warnings}
