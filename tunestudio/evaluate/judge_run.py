"""The LLM judge on a saved evaluation: connect, grade (judge.py), compare with people's ratings
(agreement.py), keep it all beside the evaluation and in the registry.

`tunestudio eval --judge` and the Evaluate tab's judge panel both call `judge_evaluation`.
The API key comes from the environment (TUNESTUDIO_JUDGE_API_KEY, else OPENAI_API_KEY): it is
sent as `Authorization: Bearer`, and never written, printed or recorded.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.statefiles import write_json
from tunestudio.core.workspace import Workspace
from tunestudio.evaluate import ratings
from tunestudio.evaluate.agreement import agreement
from tunestudio.evaluate.judge import Judge, judge_rows, read_rubric
from tunestudio.models.endpoint import base_url, first_model

API_KEY_ENVS = ("TUNESTUDIO_JUDGE_API_KEY", "OPENAI_API_KEY")


def api_key_from_env() -> str | None:
    for name in API_KEY_ENVS:
        if os.environ.get(name):
            return os.environ[name]
    return None


def shown_url(url: str) -> str:
    """The URL without any user:password part, for files, logs and the registry."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def connect(url: str, model: str | None = None, parallel: int = 4, timeout: float = 60.0) -> Judge:
    """A Judge for an OpenAI-compatible endpoint, checked before any work: the endpoint must answer
    (its /models); without `model`, the first model it lists is the judge."""
    if int(parallel) < 1:
        raise UserError(f"--judge-parallel must be at least 1 (got {parallel})", "option_at_least",
                        option="--judge-parallel", value=parallel, least=1)
    if not float(timeout) > 0:
        raise UserError(f"--judge-timeout must be above 0 seconds (got {timeout})", "option_at_least",
                        option="--judge-timeout", value=timeout, least=0)
    key = api_key_from_env()
    url = base_url(url)
    try:
        listed = first_model(url, key, timeout=min(float(timeout), 10.0))
    except UserError as e:
        if e.code == "endpoint_unreachable" or model is None:
            raise UserError(str(e).replace(url, shown_url(url)), e.code,
                            **{k: shown_url(v) if k in ("url", "address") else v for k, v in e.fields.items()}) \
                from None
        listed = None   # a server without /models: the named model is asked directly
    return Judge(url=url, model=model or listed, api_key=key, parallel=int(parallel), timeout=float(timeout))


def load_rows(folder: str | Path) -> list[dict]:
    """A saved evaluation's per-example rows (its examples.jsonl)."""
    path = Path(folder) / "examples.jsonl"
    try:
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the evaluation's examples {path} ({e})", "judge_eval_unreadable",
                        path=str(path), detail=str(e)) from None


def latest_evaluation(ws: Workspace, run_id: str) -> dict:
    """The run's newest saved evaluation that generated answers: {output_dir, n, base_metrics, ...}."""
    conn = registry.connect(ws.db_path)
    try:
        evals = registry.run_evaluations(conn, run_id)
    finally:
        conn.close()
    for e in evals:
        if e.get("output_dir") and (Path(e["output_dir"]) / "examples.jsonl").is_file() \
                and "stopped" in (e.get("metrics") or {}):   # answers were generated (not loss only)
            return e
    raise UserError(f"run {run_id} has no saved evaluation with generated answers to judge: evaluate it first",
                    "judge_no_evaluation", run=run_id)


def agreement_with_people(ws: Workspace, run_id: str | None, examples: list[dict]) -> dict | None:
    """The judge's base/tuned/tie verdicts against every human rating of the same prompt (one pair per rating)."""
    if not run_id:
        return None
    verdicts = {}
    for e in examples:
        if e.get("verdict") is not None:
            verdicts.setdefault(str(e.get("input") or ""), e["verdict"])
    pairs = [(verdicts[prompt], human) for prompt, human in ratings.base_vs_tuned(ws, run_id) if prompt in verdicts]
    return agreement(pairs)


def judge_evaluation(ws: Workspace, rows: list[dict], judge: Judge, mode: str = "both", rubric: str | None = None,
                     run_id: str | None = None, folder: str | Path | None = None, save: bool = True) -> dict:
    """Grade the rows, compare with people, and (with `save` and a folder) write judge.json (the summary)
    and judge.jsonl (per example: the judge's raw text and parsed verdict) into the evaluation's folder and
    a row in the registry's judgements table. Returns the summary with `examples`."""
    criteria = read_rubric(rubric)   # a bad rubric fails before any request
    t0 = time.monotonic()
    out = judge_rows(rows, judge, mode, criteria)
    out.update(endpoint=shown_url(judge.url), judge_model=judge.model, rubric=str(rubric) if rubric else "default",
               parallel=judge.parallel, timeout=judge.timeout, seconds=round(time.monotonic() - t0, 2),
               run_id=run_id, evaluation_dir=str(folder) if folder else None)
    out["agreement"] = agreement_with_people(ws, run_id, out["examples"])
    if save and folder:
        folder = Path(folder)
        summary = {k: v for k, v in out.items() if k != "examples"}
        write_json(folder / "judge.json", summary)
        with open(folder / "judge.jsonl", "w", encoding="utf-8") as f:
            for e in out["examples"]:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
        out["files"] = {"judge": str(folder / "judge.json"), "judge_examples": str(folder / "judge.jsonl")}
        record(ws, out)
    return out


def record(ws: Workspace, out: dict) -> None:
    results = {k: out.get(k) for k in ("single", "pairwise", "failed_reasons", "rubric", "seconds")}
    conn = registry.connect(ws.db_path)
    try:
        conn.execute("INSERT INTO judgements (created_at, run_id, evaluation_dir, endpoint, judge_model, mode, n,"
                     " results, agreement) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (time.time(), out.get("run_id"), out.get("evaluation_dir"), out["endpoint"], out["judge_model"],
                      out["mode"], out["n"], json.dumps(results), json.dumps(out.get("agreement"))))
    finally:
        conn.close()


def list_judgements(ws: Workspace, run_id: str | None = None) -> list[dict]:
    """Saved judgements, newest first (all, or one run's)."""
    conn = registry.connect(ws.db_path)
    try:
        q = "SELECT * FROM judgements" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY created_at DESC, id DESC"
        return [registry.row_to_dict(r, "judgements") for r in conn.execute(q, (run_id,) if run_id else ())]
    finally:
        conn.close()
