"""The house rules (docs/dev/architecture.md), kept by reading every import in the package.

Every `import` counts, at the top of a module or inside a function, and so does a string that names
a module (`importlib.import_module(...)`, the CLI's command list, the objectives table): a lazy
import is still a dependency, and hiding one in a function is how cycles came in before.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "tunestudio"

# Bottom to top: a package imports its own modules and the layers below it, never above.
# Packages on one layer ("jobs", "evaluate") do not import each other.
LAYERS = [
    ("core",),
    ("config",),
    ("data",),
    ("models",),
    ("rewards",),
    ("train",),
    ("jobs", "evaluate"),
    ("runs",),
    ("ship",),
    ("sweeps",),
    ("demo",),
    ("webui",),
    ("cli",),
]
# What a function-level import may keep out of `tunestudio --help` and `import tunestudio`.
HEAVY = {"torch", "transformers", "trl", "peft", "accelerate", "datasets", "gradio", "pyarrow", "pandas",
         "optuna", "sacrebleu", "rouge_score", "mlflow", "wandb", "trackio", "tensorboard", "gguf",
         "safetensors", "tokenizers", "huggingface_hub", "bitsandbytes", "deepspeed", "liger_kernel", "lm_eval"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module a dotted name lives in (`tunestudio.core.errors.UserError` -> `tunestudio.core.errors`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every internal import of `module`, and every
    string that is exactly an internal module's name."""
    found, external = [], []
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [f"{child.module}.{a.name}" for a in child.names]
                external.append((child.module, in_function))
            elif _names_modules(child):
                names = [e.value for e in _names_modules(child)]
            lazy = in_function or not isinstance(child, (ast.Import, ast.ImportFrom))   # by name: loaded later
            for name in names:
                if name.startswith("tunestudio"):
                    target = _owner(name)
                    if target and target != module and target != "tunestudio":
                        found.append((target, child.lineno, lazy))
                elif isinstance(child, ast.Import):
                    external.append((name, in_function))
            visit(child, inner)

    visit(tree, False)
    _EXTERNAL[module] = external
    return found


def _names_modules(node) -> list:
    """The string constants that name an internal module to load later: the first argument of
    importlib.import_module (and the objectives table's `_lazy`), or the items of a *MODULES list."""
    if isinstance(node, ast.Call):
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        if name in ("import_module", "_lazy") and node.args and isinstance(node.args[0], ast.Constant):
            return [node.args[0]] if node.args[0].value in MODULES else []
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "").endswith("MODULES") for t in node.targets) \
            and isinstance(node.value, (ast.List, ast.Tuple)):
        return [e for e in node.value.elts if isinstance(e, ast.Constant) and e.value in MODULES]
    return []


_EXTERNAL: dict[str, list] = {}
GRAPH = {m: _imports(m) for m in MODULES}


def _package(module: str) -> str:
    """The top package a module belongs to: `tunestudio.data.formats.load` -> `data`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (MODULES[module].name == "__init__.py")) else ""


def _layer(package: str) -> int:
    for i, names in enumerate(LAYERS):
        if package in names:
            return i
    raise AssertionError(f"package tunestudio.{package} is on no layer: add it to LAYERS and to docs/dev/architecture.md")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]; counter[0] += 1; stack.append(child); on.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_every_package_is_on_a_layer_and_imports_only_downward():
    wrong = []
    for module, imports in GRAPH.items():
        here = _package(module)
        if not here:   # tunestudio/__init__.py (the version) and __main__.py (the entry point)
            continue
        for target, line, _ in imports:
            there = _package(target)
            if not there or there == here:
                continue
            if _layer(there) >= _layer(here):
                wrong.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {target} "
                             f"({there} is not below {here})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules():
    graph = {m: {t for t, _, _ in imports} for m, imports in GRAPH.items()}
    assert not _cycles(graph), _cycles(graph)


def test_no_import_cycles_between_packages_at_any_depth():
    """`data.formats` and `data.chat` count as packages too, and so do a package's own modules
    against its subpackages (`data/split.py` is in `data`, `data/formats/load.py` in `data.formats`)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, imports in GRAPH.items():
        for target, _, _ in imports:
            a, b = module.rpartition(".")[0], target.rpartition(".")[0]
            if MODULES[module].name == "__init__.py":
                a = module
            if MODULES[target].name == "__init__.py":
                b = target
            if a != b:
                graph[a].add(b)
    assert not _cycles(graph), _cycles(graph)


def test_nothing_imports_the_command_line():
    """CLI modules are faces: the library below never reaches up into them (the web UI launches the
    CLI as a process instead)."""
    wrong = [f"{m} imports {t}" for m, imports in GRAPH.items() for t, _, _ in imports
             if t.startswith("tunestudio.cli") and not m.startswith("tunestudio.cli") and m != "tunestudio.__main__"]
    assert not wrong, wrong


def _heavy_at_import() -> set[str]:
    """The modules whose import loads a heavy library (torch, TRL, Gradio, ...), directly or through
    the modules they import at their top."""
    heavy = {m for m, ext in _EXTERNAL.items() if any(n.split(".")[0] in HEAVY and not f for n, f in ext)}
    changed = True
    while changed:
        changed = False
        for m, imports in GRAPH.items():
            if m not in heavy and any(t in heavy and not f for t, _, f in imports):
                heavy.add(m)
                changed = True
    return heavy


def test_imports_inside_functions_only_keep_heavy_libraries_out():
    """An import inside a function is there to keep torch, TRL, Gradio (...) out of `--help` and out of
    `import tunestudio`; one of a light module belongs at the top, where the reader sees it."""
    heavy = _heavy_at_import()
    lazy = [f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {t} inside a function"
            for m, imports in GRAPH.items() for t, line, f in imports
            if f and t not in heavy and not t.startswith("tunestudio.cli")]
    assert not lazy, "\n".join(sorted(lazy))


def test_help_and_import_load_no_heavy_library():
    code = ("import sys; from tunestudio.cli.main import build_parser; build_parser(); "
            f"print(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert out.stdout.strip() == "[]", out.stdout


def test_no_module_imports_another_modules_private_names():
    """A name another module needs is part of its module's interface: public, without the underscore
    (files split by length used to reach into each other's privates)."""
    wrong = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tunestudio"):
                wrong += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not wrong, "\n".join(wrong)


def test_every_module_path_the_code_and_docs_name_exists():
    """A comment or page that names `data/encoding/encode.py` sends the reader there: after a move it
    must follow (`rewards/<name>.py` is a user's reward file in the workspace, not a module)."""
    repo = PACKAGE.parent
    packages = "|".join(sorted({m.split(".")[1] for m in MODULES if m.count(".") >= 1} - {"rewards", "__main__"}))
    mention = re.compile(rf"(?<![\w/.-])(tunestudio/)?((?:{packages})(?:/[a-z_]+)*/[a-z_]+\.py)\b")
    texts = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.yaml"), *(repo / "docs").rglob("*.md"), repo / "README.md",
             *(repo / "tests").rglob("*.py"), *(repo / "scripts").glob("*"), *(repo / "bench").glob("*")]
    missing = [f"{path.relative_to(repo)}:{n}: {m.group(0)}"
               for path in texts if path.is_file()
               for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
               for m in mention.finditer(line) if not (PACKAGE / m.group(2)).exists()]
    assert not missing, "\n".join(missing)
