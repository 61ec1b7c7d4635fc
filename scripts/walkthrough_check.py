"""Walk every tab of the web UI in English and Tetum with content on screen, and count what a
person would distrust (issue 14's hidden walkthrough, done ourselves):

  lang     strings of the other language on screen (tests/lang_check.py: locale-file fragments)
  charts   charts shown empty (axes, no marks), without a legend of named series, or with axis
           titles that are raw column names or the other language's words
  status   statuses that disagree with the registry and the runs' events (Runs table: status,
           steps; Training tab: the latest job's state, run, step; the queue; sweep trials; exports),
           and failure reasons not worded in the UI language (a failed job's, a failed export's)
Besides those, "lang" counts table headers and cells that show an engine key (train_loss, stopped,
an option name) where the locale has a name for it, and bare column numbers; "charts" counts legend
labels cut short ("…").

Before walking, a job that fails in its process (a dataset that is not there) is submitted through
the queue, so the Training tab shows a failed job; on the Runs tab a GGUF export of walk-done (a
tokenizer llama.cpp does not know) fails; on the Datasets tab Preview is pressed.

    python scripts/walkthrough_check.py WORKSPACE [--port 7878] [--url URL]

WORKSPACE is made by scripts/walkthrough_setup.py. Without --url it starts `tunestudio webui` on
--port and stops it at the end. Prints one line per language and tab with the three counts and each
fault found; screenshots go to test-artifacts/webui/walk-<lang>-<phase>-<tab>.png. Phases: "acted" (the
tab's content put on screen in that language), "switched" (what the language switch re-rendered).
Exit 1 when any count is not zero."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lang_check import wrong_language  # noqa: E402
from tunestudio import jobs, registry, run_progress  # noqa: E402
from tunestudio.webui.common import metric_label  # noqa: E402
from tunestudio.webui.i18n import _catalog, engine_error, t  # noqa: E402
from tunestudio.workspace import Workspace  # noqa: E402

SHOTS = ROOT / "test-artifacts" / "webui"
TABS = ("model", "datasets", "training", "runs", "evaluate", "chat", "rate")
LANGS = {"en": "English", "tet": "Tetun"}
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
    mine, theirs = _catalog(lang), _catalog(other)
    mine_values = {str(v).strip().lower() for v in mine.values()}
    words = {str(v).strip().lower() for k, v in theirs.items() if not k.startswith("_") and k in mine
             and str(mine[k]) != str(v) and "{" not in str(v) and len(str(v)) >= 4}
    words -= mine_values
    # a word `lang`'s own texts use too (Tetum says "prompt") is no sign of the other language
    mine_text = " " + " ".join(re.sub(r"[^\w'-]+", " ", str(v).lower()) for v in mine.values()) + " "
    words = {w for w in words if f" {w} " not in mine_text}
    return sorted({x for x in page.evaluate(LEAVES_JS) if x.lower() in words})


def chart_faults(page, lang: str, other: str) -> list[str]:
    words_other = {str(v).strip().lower() for v in _catalog(other).values()}
    words_mine = {str(v).strip().lower() for v in _catalog(lang).values()}
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
    keys = {k.split(".", 1)[1] for k in _catalog("en") if k.startswith(("metric.", "param."))}
    ours = {str(v).strip().lower() for v in _catalog(lang).values()}
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
    from tunestudio import sweep

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


def _wait(page, selector: str, text: str, timeout: int = 90_000) -> str:
    page.wait_for_function("([s, x]) => { const e = document.querySelector(s); return !!e && e.innerText.includes(x); }",
                           arg=[selector, text], timeout=timeout)
    return page.inner_text(selector)


def _pick(page, selector: str, option) -> None:
    page.click(f"{selector} input")
    page.get_by_role("option", name=option).first.click()
    page.mouse.click(5, 5)


def act(page, tab: str, ws: Workspace, lang: str) -> None:
    """Put the tab's content on screen as a person would: a dataset checked, its statistics; a run's
    details and a comparison; the sweep and ship panels open; an evaluation; a chat answer."""
    reg = sorted(registry_runs(ws).values(), key=lambda r: r["created_at"])
    done = next(r for r in reg if r["name"] == "walk-done")
    resumed = next((r for r in reg if r["name"] == "walk-resumed"), done)
    if tab == "datasets":
        _pick(page, "#datasets-pick", "demo-reviews.jsonl")
        page.click("#datasets-check")
        _wait(page, "#datasets-report", "2000")
        page.click("#datasets-stats")
        page.wait_for_function("document.querySelectorAll('#datasets-histogram g.mark-rect path').length > 0", timeout=90_000)
        page.click("#datasets-preview-btn")   # the training example: its legend and notes in `lang`
        page.wait_for_function("document.querySelector('#datasets-preview').innerText.trim().length > 0", timeout=90_000)
    elif tab == "runs":
        # Details first, then Compare: the curves must be drawn again for the second
        _pick(page, "#runs-a", re.compile(re.escape(done["id"])))
        page.click("#runs-details")
        page.wait_for_timeout(4000)
        _pick(page, "#runs-b", re.compile(re.escape(resumed["id"])))
        page.click("#runs-compare")
        page.wait_for_timeout(4000)
        for acc in ("#sweeps", "#ship"):
            label = page.locator(f"{acc} > button.label-wrap, {acc} button.label-wrap").first
            if label.count() and "open" not in (label.get_attribute("class") or ""):
                label.click()
        page.wait_for_timeout(1000)
        export_fails(page)
        if page.locator("#sweeps-pick").count():
            _pick(page, "#sweeps-pick", "walk-sweep")
            page.click("#sweeps-show")
            page.wait_for_function("document.querySelector('#sweeps-text').innerText.includes('walk-sweep')", timeout=60_000)
        page.wait_for_timeout(3000)
    elif tab == "evaluate":
        page.fill("#eval-limit input", "4")
        page.press("#eval-limit input", "Tab")
        page.click("#eval-run-button")
        page.wait_for_function("document.querySelector('#eval-message').innerText.trim().length > 0", timeout=300_000)
        page.wait_for_timeout(2000)
    elif tab == "chat":
        page.fill("#chat-input textarea", "The kettle arrived on time and looks flimsy.")
        page.press("#chat-input textarea", "Enter")
        page.wait_for_function("document.querySelectorAll('#chatbot .bot-row, #chatbot [data-testid=\"bot\"]').length > 0",
                               timeout=180_000)
        page.wait_for_timeout(2000)


def export_fails(page) -> None:
    """Export run A (walk-done) as GGUF from the Ship panel: the demo tokenizer is tunestudio's own,
    which llama.cpp's converter does not know, so the export process fails with a coded reason."""
    _pick(page, "#ship-format", re.compile("GGUF"))
    page.click("#ship-export")
    page.wait_for_function("document.querySelector('#ship-export-status').innerText.includes('❌')", timeout=300_000)


def export_faults(page, ws: Workspace, lang: str) -> list[str]:
    """The Ship panel's message for the export that just failed: its reason coded and worded in `lang`."""
    from tunestudio import ship_jobs

    text = page.inner_text("#ship-export-status") if page.locator("#ship-export-status").count() else ""
    if "❌" not in text:
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


def check_tab(page, ws: Workspace, tab: str, lang: str, shot: str, settle: float = 60) -> dict:
    """The three counts for the tab in view; waits up to `settle` s for the wrong-language count
    to reach 0 (a switch re-renders in steps)."""
    other = "tet" if lang == "en" else "en"
    deadline = time.time() + settle
    while True:
        wrong = wrong_language(page.inner_text("body"), lang, other)
        if not wrong or time.time() > deadline:
            break
        page.wait_for_timeout(1000)
    wrong += [f"word: {w}" for w in wrong_words(page, lang, other)]
    wrong += raw_key_faults(page, lang)
    charts = chart_faults(page, lang, other)
    status = []
    if tab == "training":
        status = training_status_faults(page, ws, lang)
    elif tab == "runs":
        status = runs_table_faults(page, ws, lang) + sweep_faults(page, ws, lang) + ship_faults(page, ws) + \
            export_faults(page, ws, lang)
    page.screenshot(path=str(SHOTS / f"walk-{shot}.png"), full_page=True)
    return {"lang": wrong, "charts": charts, "status": status}


def walk(url: str, ws: Workspace) -> int:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    total = 0
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#model-select")
        # English with content put on screen; Tetum: first what the switch re-rendered, then content
        # put on screen anew; English again: what the switch back re-rendered
        for lang, switched, acting in (("en", False, True), ("tet", True, True), ("en", True, False)):
            if switched:
                _pick(page, "#ui-language", LANGS[lang])
                page.wait_for_selector(f"button[role=tab]:text-is('{t(lang, 'tabs.runs')}')", timeout=90_000)
            for i, tab in enumerate(TABS):
                page.get_by_role("tab").nth(i).click()
                page.wait_for_timeout(2500)
                for phase in (["switched"] if switched else []) + (["acted"] if acting else []):
                    if phase == "acted":
                        try:
                            act(page, tab, ws, lang)
                        except Exception as e:   # an action that does not complete is a finding too
                            print(f"  {lang}/{tab}: action did not complete: {str(e).splitlines()[0][:160]}",
                                  flush=True)
                    found = check_tab(page, ws, tab, lang, shot=f"{lang}-{phase}-{tab}")
                    n = {k: len(v) for k, v in found.items()}
                    total += sum(n.values())
                    print(f"{lang:3} {phase:8} {tab:9} wrong-language {n['lang']}  charts {n['charts']}  "
                          f"status {n['status']}", flush=True)
                    for kind, items in found.items():
                        for item in items:
                            print(f"      [{kind}] {item}", flush=True)
        b.close()
    return total


def fail_a_job(ws: Workspace) -> None:
    """Submit, as Start does, a job whose process fails before its run exists (its dataset is not
    there), and wait for it to end: the Training tab then shows it failed, with its reason."""
    from tunestudio.train.config import RunConfig

    job = jobs.submit(ws, RunConfig(model="tiny-demo", dataset="walk-missing.jsonl", max_steps=2, name="walk-missing"))
    deadline = time.time() + 300
    while time.time() < deadline:
        jobs.advance(ws)
        if jobs.get_job(ws, job.id).status not in jobs.ACTIVE:
            break
        time.sleep(1)
    print(f"failed job {job.id}: {jobs.get_job(ws, job.id).status}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workspace")
    ap.add_argument("--port", type=int, default=7878)
    ap.add_argument("--url", default="")
    a = ap.parse_args()
    ws = Workspace(Path(a.workspace).resolve())
    proc = None
    url = a.url
    if not url:
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        log = open(ws.root.parent / f"walkthrough-ui-{a.port}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "tunestudio", "webui", "--port", str(a.port),
                                 "--workspace", str(ws.root)], stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=str(ROOT), start_new_session=True)
        url = f"http://127.0.0.1:{a.port}/"
        import urllib.request

        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
    fail_a_job(ws)
    try:
        total = walk(url, ws)
    finally:
        if proc:
            proc.terminate()
            proc.wait(20)
    print(f"total faults: {total}")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
