"""Gradio's own texts (the upload box's "Drop File Here", "- or -", "Click to Upload", buttons
inside its components) in the UI language.

Gradio translates those in the browser with svelte-i18n, from the browser's locale, once: each
component gets the translation function when it is mounted, so not even Gradio's own
`changeLocale` reaches a component already on the page (tried with gradio 6.31: the upload box
stays English), and Tetum is not among its languages. So the page carries a small script
(`head_html`, for `launch(head=...)`): it knows Gradio's English texts and their translation in
each language (the `gradio:` section of the locale files), rewrites the text nodes that show
them, and keeps doing so for components drawn later (a tab opened, an accordion unfolded). The
language dropdown tells it the language (`switch_js`); back in English it puts Gradio's words back.
"""

from __future__ import annotations

import json

from tunestudio.webui.i18n.texts import DEFAULT, catalog, languages, t

PREFIX = "gradio."
# Keys Gradio's frontend asks its dictionary for that the dictionary lacks, in every language: the
# key itself is then what the page holds. Its status tracker puts `common.complete` in a screen-reader
# region when a handler ends (gradio 6.31). Worded from the locale files' key of the same name.
MISSING = ("common.complete",)


def translations(code: str) -> dict:
    """The `gradio:` texts of language `code`, nested as Gradio's dictionary is:
    {"upload_text": {"drop_file": ...}, "common": {"or": ...}}. Empty if the file has none."""
    out: dict = {}
    for key, text in catalog(code).items():
        if key.startswith(PREFIX):
            *path, leaf = key[len(PREFIX):].split(".")
            node = out
            for part in path:
                node = node.setdefault(part, {})
            node[leaf] = str(text)
    return out


def phrases() -> dict:
    """{language code: {Gradio's English text: the text in that language}} for every language
    but English, from the `gradio:` section of the locale files (English: en.yaml's copy of
    Gradio's wording). Texts a language leaves as in English are left out."""
    en = _flat(translations(DEFAULT))
    out = {}
    for _, code in languages():
        if code == DEFAULT:
            continue
        mine = _flat(translations(code))
        pairs = {en[k]: v for k, v in mine.items() if k in en and v != en[k]}
        if pairs:
            out[code] = pairs
    return out


def missing_texts() -> dict:
    """{language code: {Gradio's key shown as it is: the text in that language}}, every language."""
    return {code: {key: str(t(code, key)) for key in MISSING} for _, code in languages()}


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


# The upload box draws "- or -" as one text node around common.or; other texts are whole nodes
# (with spaces around them). A node is rewritten only when its trimmed text is one of Gradio's
# English texts (or their translation, to switch back), so no other text is touched.
_SCRIPT = """<script>
(() => {
  const PHRASES = %s;
  const MISSING = %s;   // Gradio's keys it shows untranslated, in every language (English too)
  let lang = "en";
  const table = () => {
    const out = new Map();   // shown text -> text in `lang`
    for (const code of Object.keys(PHRASES)) {
      for (const [en, other] of Object.entries(PHRASES[code])) {
        const want = lang === code ? other : (PHRASES[lang] || {})[en] || en;
        out.set(en, want); out.set(other, want);
        out.set("- " + en + " -", "- " + want + " -"); out.set("- " + other + " -", "- " + want + " -");
      }
    }
    for (const code of Object.keys(MISSING)) {
      for (const [key, text] of Object.entries(MISSING[code])) {
        const want = (MISSING[lang] || {})[key] || text;
        out.set(key, want);
        if (code !== "en") out.set(text, want);   // back from another language; an English word is left alone
      }
    }
    return out;
  };
  let map = table();
  const fix = (node) => {
    const text = node.nodeValue, key = text.trim();
    if (!key || key.length > 40) return;
    const want = map.get(key);
    if (want !== undefined && want !== key) node.nodeValue = text.replace(key, want);
  };
  const walk = (root) => {
    if (root.nodeType === 3) return fix(root);
    const it = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = it.nextNode(); n; n = it.nextNode()) fix(n);
  };
  window.tunestudioGradioLanguage = (code) => {
    lang = code || "en"; map = table();
    if (document.body) walk(document.body);
  };
  // What was added or changed is gathered and rewritten once per frame (a language switch changes
  // hundreds of nodes); in English too, where Gradio's untranslated keys (MISSING) still show.
  let pending = new Set(), queued = false;
  const flush = () => { queued = false; const nodes = pending; pending = new Set(); nodes.forEach(walk); };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "characterData") pending.add(r.target);
      else r.addedNodes.forEach((n) => pending.add(n));
    }
    if (!queued && pending.size) { queued = true; requestAnimationFrame(flush); }
  }).observe(document.documentElement, {childList: true, subtree: true, characterData: true});
})();
</script>"""


def head_html() -> str:
    """The `<script>` for `launch(head=...)` that shows Gradio's own texts in the UI language."""
    return _SCRIPT % (json.dumps(phrases(), ensure_ascii=False), json.dumps(missing_texts(), ensure_ascii=False))


def switch_js() -> str:
    """Browser code for the language dropdown's change: tell the page script the new language."""
    return "(lang) => { if (window.tunestudioGradioLanguage) window.tunestudioGradioLanguage(lang); return lang; }"
