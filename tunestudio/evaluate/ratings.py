"""Blind A/B human ratings: which of two models answers better, judged by people.

A session holds, per prompt, both sources' answers in a random order (`swapped` per item), so a
rater cannot learn which side is which. Choices are stored as the rater saw them (A, B, tie) and
un-swapped only when summarising. Win rates come with 95% Wilson score intervals, which stay
sensible for small counts and rates near 0 or 1 (unlike the normal approximation).

The web UI calls create_session / next_item / record_rating / summary; so does `tunestudio rate`.
"""

from __future__ import annotations

import json
import math
import random
import time

from tunestudio.core import registry
from tunestudio.core.errors import UserError
from tunestudio.core.workspace import Workspace
from tunestudio.data.split import load_splits
from tunestudio.evaluate import report
from tunestudio.models import loading
from tunestudio.models.generate import Sampling, generate
from tunestudio.models.loading import find_run

CHOICES = {"a": "A", "b": "B", "tie": "tie", "t": "tie", "=": "tie"}
Z95 = 1.959963984540054


def _conn(ws: Workspace):
    return registry.connect(ws.db_path)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion k/n (None when n is 0)."""
    if n == 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _display(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] if m["role"] == "user" else f"[{m['role']}] {m['content']}" for m in prompt)


# ---- sources: what produces each side's answers --------------------------------------------------

def parse_source(ws: Workspace, spec: str) -> dict:
    """`run:RUN`, `base:RUN` (that run's base model, with the run's chat template) or `model:M`;
    a bare name is a run when one has that id or name, else a model."""
    kind, _, ref = spec.partition(":")
    if kind in ("run", "base", "model") and ref:
        return {"kind": kind, "ref": ref, "label": spec}

    try:
        find_run(ws, spec)
        return {"kind": "run", "ref": spec, "label": f"run:{spec}"}
    except UserError:
        return {"kind": "model", "ref": spec, "label": f"model:{spec}"}


def source_outputs(ws: Workspace, spec: str, prompts: list, sampling=None) -> tuple[str, list[str]]:
    """(label, answers) of one source for every prompt."""

    src = parse_source(ws, spec)
    kw = {"model": src["ref"]} if src["kind"] == "model" else {"run": src["ref"], "base": src["kind"] == "base"}
    model, tok, _ = loading.load_model(ws, **kw)
    outputs = generate(model, tok, prompts, sampling)
    del model
    loading.release_memory()
    return src["label"], outputs


def prompts_from(ws: Workspace, dataset: str | None = None, prompts: list[str] = (), limit: int | None = None) -> list:
    """Prompts from a dataset (each row's conversation up to its answer) and/or given strings."""
    out: list = list(prompts or [])
    if dataset:
        for r in load_splits(ws, dataset, 0, 0).train:
            out.append(r.prompt() if r.is_chat else r.text)
    if limit:
        out = out[:limit]
    if not out:
        raise UserError("no prompts: give --prompts DATASET or --prompt TEXT", "rate_no_prompts")
    return out


# ---- sessions --------------------------------------------------------------------------------------

def create_session(ws: Workspace, prompts: list, a: str, b: str, name: str | None = None,
                   seed: int | None = None, max_new_tokens: int = 128, sampling=None,
                   outputs_a: list[str] | None = None, outputs_b: list[str] | None = None) -> int:
    """A new session; returns its id.

    `a` and `b` are source specs (see parse_source) whose answers are generated here, or, when
    `outputs_a` / `outputs_b` are given, just labels for those answers. Each item's display
    order is drawn at random (seeded by `seed`).
    """

    if not prompts:
        raise UserError("a rating session needs at least one prompt", "rate_no_prompts")
    sampling = sampling or Sampling(max_new_tokens=max_new_tokens)
    if outputs_a is None:
        a, outputs_a = source_outputs(ws, a, prompts, sampling)
    if outputs_b is None:
        b, outputs_b = source_outputs(ws, b, prompts, sampling)
    if not (len(outputs_a) == len(outputs_b) == len(prompts)):
        raise UserError(f"{len(prompts)} prompts but {len(outputs_a)} and {len(outputs_b)} outputs",
                        "rate_outputs_mismatch", prompts=len(prompts), a=len(outputs_a), b=len(outputs_b))
    rng = random.Random(seed)
    items = []
    for p, oa, ob in zip(prompts, outputs_a, outputs_b):
        swapped = rng.random() < 0.5
        items.append({"prompt": _display(p), "messages": None if isinstance(p, str) else p,
                      "a": ob if swapped else oa, "b": oa if swapped else ob, "swapped": swapped})
    conn = _conn(ws)
    try:
        cur = conn.execute("INSERT INTO rating_sessions (created_at, name, a_label, b_label, items) VALUES (?, ?, ?, ?, ?)",
                           (time.time(), name, a, b, json.dumps(items, ensure_ascii=False)))
        return cur.lastrowid
    finally:
        conn.close()


def get_session(ws: Workspace, session_id: int) -> dict:
    conn = _conn(ws)
    try:
        row = conn.execute("SELECT * FROM rating_sessions WHERE id = ?", (session_id,)).fetchone()
    finally:
        conn.close()
    if row is None:
        raise UserError(f"no rating session {session_id}: `tunestudio rate list` shows them", "rate_session_missing",
                        session=session_id)
    return registry.row_to_dict(row, "rating_sessions")


def list_sessions(ws: Workspace) -> list[dict]:
    """Every session, newest first: {id, name, created_at, a_label, b_label, items, rated}."""
    conn = _conn(ws)
    try:
        rows = conn.execute(
            "SELECT s.id, s.name, s.created_at, s.a_label, s.b_label, json_array_length(s.items) AS items,"
            " (SELECT COUNT(DISTINCT item) FROM ratings r WHERE r.session_id = s.id) AS rated"
            " FROM rating_sessions s ORDER BY s.created_at DESC, s.id DESC").fetchall()
        return [dict(r) for r in rows]
    finally:
        conn.close()


def _latest(conn, session_id: int) -> list[dict]:
    """The ratings that count: each rater's last choice per item."""
    rows = conn.execute("SELECT * FROM ratings WHERE session_id = ? ORDER BY id", (session_id,)).fetchall()
    latest = {}
    for r in rows:
        latest[(r["item"], r["rater"])] = dict(r)
    return list(latest.values())


def next_item(ws: Workspace, session_id: int, rater: str | None = None) -> dict | None:
    """The first item `rater` has not rated (any rater, when None), or None when all are done.

    Returns {session_id, item, prompt, a, b, done, total}: what a rater may see, never `swapped`.
    """
    session = get_session(ws, session_id)
    conn = _conn(ws)
    try:
        done = {r["item"] for r in _latest(conn, session_id) if rater is None or r["rater"] == rater}
    finally:
        conn.close()
    items = session["items"]
    for i, it in enumerate(items):
        if i not in done:
            return {"session_id": session_id, "item": i, "prompt": it["prompt"], "a": it["a"], "b": it["b"],
                    "done": len(done), "total": len(items)}
    return None


def record_rating(ws: Workspace, session_id: int, item: int, choice: str, comment: str | None = None,
                  rater: str | None = None) -> dict:
    """Store a choice (A, B or tie, as shown) for one item; a rater's new choice replaces their old one."""
    session = get_session(ws, session_id)
    norm = CHOICES.get(str(choice).strip().lower())
    if norm is None:
        raise UserError(f"choice must be A, B or tie (got '{choice}')", "rate_choice_bad", value=choice)
    if not 0 <= int(item) < len(session["items"]):
        raise UserError(f"session {session_id} has items 0..{len(session['items']) - 1}, not {item}", "rate_item_bad",
                        session=session_id, last=len(session["items"]) - 1, item=item)
    row = {"session_id": session_id, "item": int(item), "choice": norm, "comment": comment or None,
           "rater": rater, "created_at": time.time()}
    conn = _conn(ws)
    try:
        cur = conn.execute("INSERT INTO ratings (session_id, item, choice, comment, rater, created_at)"
                           " VALUES (:session_id, :item, :choice, :comment, :rater, :created_at)", row)
        row["id"] = cur.lastrowid
    finally:
        conn.close()
    return row


def summary(ws: Workspace, session_id: int) -> dict:
    """Win rates of the real sources (swaps undone) with 95% Wilson intervals.

    win_rate_a / win_rate_b / tie_rate are over all ratings; `preference_a` leaves ties out
    (A's share of decided pairs), the usual head-to-head figure.
    """
    session = get_session(ws, session_id)
    items = session["items"]
    conn = _conn(ws)
    try:
        rated = _latest(conn, session_id)
    finally:
        conn.close()
    wins_a = wins_b = ties = 0
    comments = []
    for r in rated:
        shown = r["choice"]
        if shown == "tie":
            ties += 1
        elif (shown == "A") != items[r["item"]]["swapped"]:  # shown A is source a unless swapped
            wins_a += 1
        else:
            wins_b += 1
        if r["comment"]:
            comments.append({"item": r["item"], "rater": r["rater"], "comment": r["comment"]})
    n, decided = len(rated), wins_a + wins_b
    return {
        "session_id": session_id, "name": session["name"], "a_label": session["a_label"],
        "b_label": session["b_label"], "items": len(items), "ratings": n,
        "items_rated": len({r["item"] for r in rated}), "raters": sorted({r["rater"] or "" for r in rated}),
        "wins_a": wins_a, "wins_b": wins_b, "ties": ties,
        "win_rate_a": wins_a / n if n else None, "win_rate_b": wins_b / n if n else None,
        "tie_rate": ties / n if n else None,
        "win_rate_a_ci95": wilson(wins_a, n), "win_rate_b_ci95": wilson(wins_b, n),
        "preference_a": wins_a / decided if decided else None, "preference_a_ci95": wilson(wins_a, decided),
        "comments": comments,
    }


def format_summary(s: dict) -> str:
    def pct(v, ci):
        if v is None:
            return "-"
        return f"{v:.0%}" + (f" (95% CI {ci[0]:.0%}-{ci[1]:.0%})" if ci else "")

    return (f"session {s['session_id']}: {s['ratings']} rating(s) of {s['items']} item(s)\n"
            f"  {s['a_label']} wins {s['wins_a']}: {pct(s['win_rate_a'], s['win_rate_a_ci95'])}\n"
            f"  {s['b_label']} wins {s['wins_b']}: {pct(s['win_rate_b'], s['win_rate_b_ci95'])}\n"
            f"  ties {s['ties']}: {pct(s['tie_rate'], None)}")


# ---- the people's verdicts on a run, for the LLM judge's agreement (agreement.py) ----------------

def _side(ws: Workspace, label: str, run_id: str) -> str | None:
    """"base" / "tuned" when a session's source label is run_id's base / fine-tuned model, else None."""
    kind, _, ref = str(label).partition(":")
    if kind not in ("run", "base") or not ref:
        return None
    try:
        found = find_run(ws, ref).id
    except UserError:   # a run deleted since
        return None
    return ("tuned" if kind == "run" else "base") if found == run_id else None


def base_vs_tuned(ws: Workspace, run_id: str) -> list[tuple[str, str]]:
    """Every rating (each rater's last choice per item) of a session that put run_id's base against its
    fine-tuned model: (the prompt as an evaluation's rows show it, "base" | "tuned" | "tie")."""
    out = []
    conn = _conn(ws)
    try:
        for s in conn.execute("SELECT * FROM rating_sessions ORDER BY id").fetchall():
            sides = (_side(ws, s["a_label"], run_id), _side(ws, s["b_label"], run_id))
            if set(sides) != {"base", "tuned"}:
                continue
            items = json.loads(s["items"])
            for r in _latest(conn, s["id"]):
                it = items[r["item"]]
                key = report.input_text(it["messages"]) if it.get("messages") else it["prompt"]
                if r["choice"] == "tie":
                    out.append((key, "tie"))
                else:   # shown A is source a unless the item was swapped
                    out.append((key, sides[0] if (r["choice"] == "A") != it["swapped"] else sides[1]))
    finally:
        conn.close()
    return out
