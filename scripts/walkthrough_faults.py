"""What the walkthrough (walkthrough_check.py) counts as a fault on the tab in view: each function
reads the page (and the workspace's registry, events, study and exports to compare with) and
returns one line per fault found; none of them clicks.

  wrong_words / raw_key_faults      strings in the other language, engine keys and bare column numbers
  chart_faults                      charts empty, without a legend of named series, raw or foreign titles
  runs_table_faults, sweep_faults, ship_faults, training_status_faults, export_faults
                                    statuses (and failure reasons) that disagree with the workspace
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tunestudio.jobs import queue as jobs
from tunestudio.core import registry
from tunestudio.core import run_progress  # noqa: E402
from tunestudio.webui.common.context import metric_label  # noqa: E402
from tunestudio.webui.i18n.texts import catalog, engine_error, t  # noqa: E402
from tunestudio.core.workspace import Workspace  # noqa: E402

RAW_TITLES = {"x", "y", "series", "state", "tokens", "rows", "step", "loss", "value", "color"}  # raw column names

# One chart's state, read from its Vega drawing: marks drawn, legend labels and titles, axis titles.
# A chart block: one holding a Vega drawing (or, drawn empty, a plot's elem_id) and no inner block that does.
CHARTS_JS = """() => [...document.querySelectorAll('.block')].filter(b => b.offsetParent !== null
    && (b.querySelector('.vega-embed') || /plot|scatter|histogram|curves/.test(b.id || ''))
    && ![...b.querySelectorAll('.block')].some(i => i.querySelector('.vega-embed'))).map(b => ({
  id: b.id || '(no id)',
  marks: [...b.querySelectorAll('g.mark-line path, g.mark-rect path, g.mark-symbol path, g.mark-area path')]
           .filter(p => !p.closest('g.role-legend') && (p.getAttribute('d') || '').length > 2).length,
  legend: [...b.querySelectorAll('g.role-legend-label text')].map(e => e.textContent),
  legend_title: [...b.querySelectorAll('g.role-legend-title text')].map(e => e.textContent),
  axes: [...b.querySelectorAll('g.role-axis-title text')].map(e => e.textContent),
  text: b.innerText.slice(0, 200)}))"""


def registry_runs(ws: Workspace) -> dict[str, dict]:
    conn = registry.connect(ws.db_path, readonly=True)
    try:
        return {r["id"]: r for r in registry.list_runs(conn)}
    finally:
        conn.close()


def last_step(ws: Workspace, run_id: str) -> int:
    """The run's last trained step by its events (train lines, or the finished/stopped line)."""
    events, _ = run_progress.read_events(ws.runs_dir / run_id / "events.jsonl")
    return run_progress.summarize(events)["step"]


# leaf texts on screen, less a file name's parts (a download "metrics.json" shows "metrics" alone)
LEAVES_JS = """() => [...document.querySelectorAll('body *')].filter(e => e.children.length === 0
    && e.offsetParent !== null && !e.closest('td.filename'))
    .map(e => e.textContent.trim()).filter(x => x && x.length < 40)"""


def wrong_words(page, lang: str, other: str) -> list[str]:
    """Short texts (a button, a table cell, a status word) shown alone that are `other`'s words for
    a text `lang` says differently: what the fragment check (two words or more) cannot see."""
    mine, theirs = catalog(lang), catalog(other)
    mine_values = {str(v).strip().lower() for v in mine.values()}
    words = {str(v).strip().lower() for k, v in theirs.items() if not k.startswith("_") and k in mine
             and str(mine[k]) != str(v) and "{" not in str(v) and len(str(v)) >= 4}
    words -= mine_values
    # a word `lang`'s own texts use too (Tetum says "prompt") is no sign of the other language
    mine_text = " " + " ".join(re.sub(r"[^\w'-]+", " ", str(v).lower()) for v in mine.values()) + " "
    words = {w for w in words if f" {w} " not in mine_text}
    return sorted({x for x in page.evaluate(LEAVES_JS) if x.lower() in words})


def chart_faults(page, lang: str, other: str) -> list[str]:
    words_other = {str(v).strip().lower() for v in catalog(other).values()}
    words_mine = {str(v).strip().lower() for v in catalog(lang).values()}
    out = []
    for c in page.evaluate(CHARTS_JS):
        name = c["id"]
        if not c["marks"]:
            out.append(f"{name}: empty chart on screen ({c['text'][:60]!r})")
            continue
        legend = [x for x in c["legend"] if x.strip()]
        if not legend or any(x.strip().lower() == "series" for x in legend):
            out.append(f"{name}: no legend of named series ({legend})")
        cut = [x for x in legend if x.rstrip().endswith("…")]   # Vega cuts labels past its labelLimit
        if cut:
            out.append(f"{name}: legend labels cut short {cut}")
        for title in c["axes"] + c["legend_title"]:
            low = title.strip().lower()
            if low in RAW_TITLES and low not in words_mine:
                out.append(f"{name}: axis/legend title is a raw column name {title!r}")
            elif low in words_other and low not in words_mine:
                out.append(f"{name}: axis/legend title {title!r} is in {other}")
    return out


def runs_table_faults(page, ws: Workspace, lang: str) -> list[str]:
    """Each Runs-table row against its registry row: the status word in `lang`."""
    heads, rows = _table(page, "runs-table")
    reg = registry_runs(ws)
    try:
        i_id, i_status = heads.index(t(lang, "runs.col.id")), heads.index(t(lang, "runs.col.status"))
    except ValueError:
        return [f"runs table: columns {heads} lack id/status in {lang}"]
    i_metrics = heads.index(t(lang, "runs.col.metrics")) if t(lang, "runs.col.metrics") in heads else None
    out, seen = [], set()
    for cells in rows:
        if len(cells) <= max(i_id, i_status):
            continue
        rid = cells[i_id]
        seen.add(rid)
        if rid not in reg:
            out.append(f"runs table: {rid} is not in the registry")
        elif cells[i_status] != t(lang, f"training.state.{reg[rid]['status']}"):
            out.append(f"runs table: {rid} says {cells[i_status]!r}, registry {reg[rid]['status']!r}")
        else:   # the steps it shows are the steps its events reached
            steps = re.escape(metric_label(lang, "steps", with_id=False))
            m = re.search(rf"(?:^|, ){steps} (\d+)", cells[i_metrics]) if i_metrics is not None else None
            step = last_step(ws, rid)
            if m and int(m.group(1)) != step:
                out.append(f"runs table: {rid} shows steps {m.group(1)}, its events end at step {step}")
    out += [f"runs table: registry run {rid} missing" for rid in set(reg) - seen]
    return out


# tables whose cells are ours (not the user's data): an engine key shown there is a name left raw
KEY_TABLES = ("runs-table", "runs-differences", "runs-metrics", "eval-metrics-table", "bench-leaderboard",
              "sweeps-trials", "model-memory", "training-queue", "ship-exports")
TABLES_JS = """() => [...document.querySelectorAll('.block')].filter(b => b.offsetParent !== null && b.id
    && b.querySelector('thead th')).map(b => ({id: b.id,
  heads: [...b.querySelectorAll('thead th')].map(th => th.innerText.trim()).filter(x => x),
  cells: [...b.querySelectorAll('.virtual-row .body-cell')].map(c => c.innerText.trim())}))"""


def raw_key_faults(page, lang: str) -> list[str]:
    """Table headers and (in our own tables) cells that show an engine key (`train_loss`, `stopped`,
    `lr`) the locale names differently in `lang` (a key beside its name, "(train_loss)", is fine),
    and headers that are bare column numbers (an empty table drawn without its columns). A cell's
    items ("name value, name value", "name=value") are judged one by one."""
    keys = {k.split(".", 1)[1] for k in catalog("en") if k.startswith(("metric.", "param."))}
    ours = {str(v).strip().lower() for v in catalog(lang).values()}
    raw = {k for k in keys if "." not in k and len(k) >= 3 and metric_label(lang, k, with_id=False) != k
           and k.lower() not in ours}
    out = []
    for tb in page.evaluate(TABLES_JS):
        if tb["heads"] and all(h.isdigit() for h in tb["heads"]):
            out.append(f"table {tb['id']}: bare column numbers as headers {tb['heads']}")
        found = {h for h in tb["heads"] if h in raw or re.fullmatch(r"[a-z]+(?:_[a-z0-9]+)+", h)}
        for text in tb["cells"] if tb["id"] in KEY_TABLES else []:
            for item in re.split(r",\s+", re.sub(r"\([^)]*\)", "", text)):
                name = re.sub(r"(?:=|\s+)[-+\d.e]+%?$|=.*$", "", item).strip()
                if name in raw:
                    found.add(name)
        if found:
            out.append(f"table {tb['id']}: engine keys shown raw {sorted(found)}")
    return out


def _table(page, elem: str) -> tuple[list[str], list[list[str]]]:
    """A Gradio table's headers and its rows (Gradio 6 draws the body as rows of div cells, after a
    header table whose own body row only sizes the columns)."""
    heads = page.evaluate(f"() => [...document.querySelectorAll('#{elem} thead th')].map(th => th.innerText.trim())")
    rows = page.evaluate(f"""() => [...document.querySelectorAll('#{elem} .virtual-row')].map(
        r => [...r.querySelectorAll('.body-cell')].map(c => c.innerText.trim())).filter(r => r.some(c => c))""")
    return heads, rows


STUDY_TO_RUN = {"complete": {"completed"}, "pruned": {"stopped", "completed"}, "fail": {"failed"},
                "running": {"running", "queued"}}


def sweep_faults(page, ws: Workspace, lang: str) -> list[str]:
    """The sweep trials table against the study (optuna) and each trial's run in the registry."""
    from tunestudio.sweeps import search as sweep

    if not page.locator("#sweeps-trials").is_visible():
        return ["sweeps: no trials table on screen for walk-sweep"]
    heads, rows = _table(page, "sweeps-trials")
    trials = {tr["number"]: tr for tr in sweep.summary(ws, "walk-sweep")["trials"]}
    reg = registry_runs(ws)
    out = []
    for cells in rows:
        number, state, run = int(cells[0]), cells[1], cells[-1]
        want = trials[number]["state"]
        if state != t(lang, f"sweeps.state.{want}"):   # the study's state, in the UI language
            out.append(f"sweeps: trial {number} shows {state!r}, study says {want!r} "
                       f"({t(lang, f'sweeps.state.{want}')!r} in {lang})")
        if run and run in reg and reg[run]["status"] not in STUDY_TO_RUN.get(want, {want}):
            out.append(f"sweeps: trial {number} {want} but its run {run} is {reg[run]['status']} in the registry")
    if len(rows) != len(trials):
        out.append(f"sweeps: {len(rows)} trial rows, the study has {len(trials)}")
    return out


def ship_faults(page, ws: Workspace) -> list[str]:
    """The Ship panel's exports table against the registry's exports of run A."""
    run = page.input_value("#runs-a input")
    rid = run.rsplit(" · ", 1)[-1]
    conn = registry.connect(ws.db_path, readonly=True)
    try:
        want = registry.run_exports(conn, rid)
    finally:
        conn.close()
    shown = _table(page, "ship-exports")[1] if page.locator("#ship-exports").is_visible() else []
    return [] if len(shown) == len(want) else [f"ship: {len(shown)} export rows for {rid}, registry has {len(want)}"]


def training_status_faults(page, ws: Workspace, lang: str) -> list[str]:
    """The Training tab's status line and progress against the latest job, its run's registry row
    and events; the queue table against the queued jobs."""
    out = []
    job = jobs.latest_job(ws)
    status = page.inner_text("#training-status")
    progress = page.inner_text("#training-progress")
    if job is None:
        return [] if t(lang, "training.no_job").split("\n")[0][:20] in status else [f"training: status {status!r} with no job"]
    if job.id not in status:
        out.append(f"training: status names no job {job.id}: {status[:80]!r}")
    if job.run_id:
        row = registry_runs(ws).get(job.run_id)
        want = row["status"] if row else "failed"
        if job.run_id not in status:
            out.append(f"training: status lacks run {job.run_id}")
        events, _ = run_progress.read_events(ws.runs_dir / job.run_id / "events.jsonl")
        summary = run_progress.summarize(events)
        m = re.search(r"(\d+)\s*/\s*(\d+)", progress)
        if summary["step"] and (not m or int(m.group(1)) != summary["step"]):
            out.append(f"training: progress {progress[:60]!r} but the events' last step is {summary['step']}")
        if summary["train"]:   # the last training loss shown is the events' last one
            want_loss = f"{summary['train'][-1][1]:.4f}"
            if want_loss not in progress:
                out.append(f"training: progress {progress[:90]!r} lacks the last loss {want_loss}")
    else:
        want = {"finished": "completed"}.get(job.status, job.status)
    word = t(lang, f"training.state.{want}")
    if word not in status:
        out.append(f"training: status {status.splitlines()[0][:90]!r} but registry/job say {want!r} ({word!r})")
    if job.status == "failed" and job.error:   # the reason the process recorded, worded in `lang`
        alerts = page.inner_text("#training-alerts")
        if not job.error.get("code"):
            out.append(f"training: the failed job's reason has no code: {job.error.get('message', '')[:80]!r}")
        elif engine_error(lang, job.error) not in alerts:
            out.append(f"training: the failed job's reason is not shown in {lang}: {alerts[:120]!r}")
    queued = [j.id for j in jobs.queued_jobs(ws)]
    shown_q = [r[0] for r in _table(page, "training-queue")[1]]
    if sorted(queued) != sorted(shown_q):
        out.append(f"training: queue shows {shown_q}, jobs file has {queued}")
    return out


def export_faults(page, ws: Workspace, lang: str) -> list[str]:
    """The Ship panel's message for the export that just failed: its reason coded and worded in `lang`."""
    from tunestudio.ship import background as ship_jobs

    text = page.inner_text("#ship-export-status") if page.locator("#ship-export-status").count() else ""
    if "✖" not in text:
        return []
    d = ship_jobs.exports_dir(ws)
    latest = max(d.glob("*.json"), key=lambda p: p.stat().st_mtime, default=None)
    if latest is None or latest.name.endswith(".error.json"):
        latest = max((p for p in d.glob("*.json") if not p.name.endswith(".error.json")),
                     key=lambda p: p.stat().st_mtime, default=None)
    st = ship_jobs.export_status(ws, latest.stem) if latest else {}
    record = st.get("error_record") or {}
    if not record.get("code"):
        return [f"ship: the failed export's reason has no code: {str(st.get('error'))[:80]!r}"]
    if engine_error(lang, record) not in text:
        return [f"ship: the failed export's reason is not shown in {lang}: {text[:120]!r}"]
    return []
