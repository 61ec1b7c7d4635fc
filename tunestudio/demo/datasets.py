"""The demo datasets: one file per supported format, each holding one learnable demo task.

Written once and never overwritten (a user may have edited them). Each file is written to a
temporary name and renamed, so an interrupted run leaves no half file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
from importlib import resources
from pathlib import Path

from tunestudio.demo import preftask, realtasks, tasks, tooltask

SEED = 1234


def guard_documents() -> list[str]:
    """General prose shipped with the package: a check that fine-tuning did not wreck the model."""
    text = resources.files("tunestudio.demo").joinpath("corpus.txt").read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def _jsonl(rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _sharegpt(row: dict) -> dict:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in row["messages"]]}


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def build() -> dict[str, dict]:
    """{file name: {"format", "task", "rows", "content"}} for every demo dataset."""
    reviews = tasks.reviews(2000, SEED)
    dates = tasks.dates(2000, SEED + 1)
    support = tasks.support(1600, SEED + 2)
    clock = tasks.clock(1440, SEED + 3)
    weather = tasks.weather(600, SEED + 4)
    tool_rows = tooltask.tools_task(2000, SEED + 5)
    guard = guard_documents()
    pairs = preftask.prefs(1200, SEED + 6)
    tickets = realtasks.tickets(400, SEED + 7)
    return {
        "demo-reviews.jsonl": {
            "format": "messages", "task": "classify a review: positive / negative / neutral",
            "rows": len(reviews), "content": _jsonl({"messages": r["messages"]} for r in reviews)},
        "demo-dates.json": {
            "format": "alpaca", "task": "write an ISO date in words (2024-03-15 -> 15 March 2024)",
            "rows": len(dates), "content": json.dumps(dates, ensure_ascii=False, indent=1) + "\n"},
        "demo-sharegpt.jsonl": {
            "format": "sharegpt", "task": "route a support message: billing / shipping / technical / account",
            "rows": len(support), "content": _jsonl(_sharegpt(r) for r in support)},
        "demo-qa.csv": {
            "format": "csv", "task": "24-hour to 12-hour time (14:05 -> 2:05 PM)",
            "rows": len(clock), "content": _csv(clock)},
        "demo-text.txt": {
            "format": "text", "task": "language modelling on short weather reports",
            "rows": len(weather), "content": "\n\n".join(weather) + "\n"},
        "demo-tools.jsonl": {
            "format": "messages+tools", "task": "call a tool: get_weather(city) / convert_currency(amount, from, to)",
            "rows": len(tool_rows), "content": _jsonl(tool_rows)},
        # the words are demo-reviews' (tokenizer=False: the demo tokenizer stays what it was)
        "demo-prefs.jsonl": {
            "format": "pairs", "task": "prefer the right review label (chosen) to a wrong one (rejected): DPO",
            "rows": len(pairs), "content": _jsonl(pairs), "tokenizer": False},
        # for the real demo model (tokenizer=False: the tiny demo tokenizer stays what it was)
        "demo-tickets.jsonl": {
            "format": "messages", "task": "route a support ticket to a team code (BIL-7, SHP-2, TEC-4, ACC-1, RET-5)",
            "rows": len(tickets), "content": _jsonl(tickets), "tokenizer": False},
        "demo-general.jsonl": {
            "format": "messages", "task": "general questions the base model answers right: the chat forgetting check",
            "rows": len(realtasks.GENERAL), "content": _jsonl(realtasks.general()), "tokenizer": False},
        "demo-guard.txt": {
            "format": "text", "task": "general prose, to check a fine-tuned model still models plain English",
            "rows": len(guard), "content": "\n\n".join(guard) + "\n"},
    }


def tokenizer_texts(specs: dict[str, dict]) -> list[str]:
    """Text to train the demo tokenizer on: every demo task's words (`specs` from `build`), plus
    general prose."""
    texts = ["system\n", "user\n", "assistant\n", *tooltask.PROMPT_PHRASES * 4]
    for name, spec in specs.items():
        if not spec.get("tokenizer", True):
            continue
        if name.endswith(".txt"):
            texts += spec["content"].split("\n\n")
        else:
            texts += spec["content"].splitlines()
    return texts


def write_datasets(folder: Path, specs: dict[str, dict]) -> dict[str, dict]:
    """Write the datasets of `specs` (from `build`) that are not there yet; report every one with
    whether it was written."""
    folder.mkdir(parents=True, exist_ok=True)
    report = {}
    for name, spec in specs.items():
        path = folder / name
        created = not path.exists()
        if created:
            tmp = folder / f".{name}.tmp-{os.getpid()}"
            tmp.write_text(spec["content"], encoding="utf-8")
            os.replace(tmp, path)
        report[name] = {"path": str(path), "format": spec["format"], "task": spec["task"],
                        "rows": spec["rows"], "created": created}
    return report
