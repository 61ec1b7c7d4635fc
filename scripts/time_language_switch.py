"""Time the web UI's language switch in a real browser (Debian's /usr/bin/chromium, Playwright).

    python scripts/time_language_switch.py URL [ROUNDS] [--trace]

Per switch (English -> Tetun -> English, ROUNDS times) it prints the seconds until the Runs tab's
label is in the new language, the seconds until the page's text (the tab in view) holds no fragment of
the other language's locale texts (tests/lang_check.py), the seconds until the last API request the
switch caused started (waiting for 2 s with no request and no component pending), and how many
requests it made; with
--trace, each request's start and end relative to the click. Start the UI first, e.g.
`tunestudio webui --port 7872 --workspace WS` on a `tunestudio demo` workspace."""
import sys, time
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from tests.lang_check import wrong_language  # noqa: E402

argv = [a for a in sys.argv[1:] if a != "--trace"]
TRACE = "--trace" in sys.argv
url = argv[0]; rounds = int(argv[1]) if len(argv) > 1 else 2
reqs = []
T0 = [None]
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
    page = b.new_page(viewport={"width": 1300, "height": 1000})
    page.on("request", lambda r: reqs.append((time.time(), r.url)) if "/gradio_api/" in r.url else None)
    starts = {}
    page.on("request", lambda r: starts.__setitem__(r, time.time()))
    def fin(r):
        if "/gradio_api/" in r.url and r in starts and "heartbeat" not in r.url:
            d = time.time() - starts[r]
            if TRACE and T0[0]: print(f"   start +{starts[r]-T0[0]:.2f} end +{time.time()-T0[0]:.2f}", end=""); print(f"   {d:.2f}s {r.method} {r.url.split('/gradio_api/')[1][:60]} {(r.post_data or '')[:80]}", flush=True)
    page.on("requestfinished", fin)
    page.goto(url); page.wait_for_selector("#model-select"); page.wait_for_timeout(6000)
    for i in range(rounds):
        for name, label in (("Tetun", "Treinu sira"), ("English", "Runs")):
            n0 = len(reqs)
            T0[0] = time.time(); page.click("#ui-language input"); page.get_by_role("option", name=name, exact=True).click()
            t0 = time.time()
            page.wait_for_selector(f"button[role=tab]:text-is('{label}')", timeout=60_000)
            t_label = time.time() - t0
            code, other = ("tet", "en") if name == "Tetun" else ("en", "tet")
            while wrong_language(page.inner_text("body"), code, other) and time.time() - t0 < 60:
                page.wait_for_timeout(50)
            t_page = time.time() - t0
            quiet = None
            while time.time() - t0 < 60:
                busy = page.evaluate("document.querySelectorAll('.pending, .generating').length")
                last = reqs[-1][0] if len(reqs) > n0 else t0
                if not busy and time.time() - last > 2.0:
                    quiet = max(last, t0) - t0
                    break
                page.wait_for_timeout(100)
            # the moment pending cleared is approximated by the last request start
            print(f"round {i} -> {name}: label {t_label:.2f}s, page {t_page:.2f}s, last request {quiet:.2f}s after switch, "
                  f"{len(reqs) - n0} API requests", flush=True)
    b.close()
