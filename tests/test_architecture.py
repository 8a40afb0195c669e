"""House rules a test can check (ARCHITECTURE.md): dependencies point one way between the
subpackages, no import cycle between modules, one outside library per module, the read side
never imports the write path, only the command line prints, modules stay small."""
from __future__ import annotations

import ast
import sys
import warnings
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "archive"

# Which subpackage may import which (besides itself). The top-level modules (errors, models,
# version) are imported by all and import only each other; `root` is archive/__init__.py, the
# public API, which nothing inside the package imports.
TOP = {"errors", "models", "version"}
ALLOWED: dict[str, set[str]] = {
    "formats": set(),
    "warc": {"formats"},
    "snapshot": {"warc", "formats"},
    "proofs": {"snapshot", "warc", "formats"},
    "browser": {"formats"},
    "write": {"browser", "snapshot", "warc", "formats"},
    "read": {"proofs", "snapshot", "warc", "formats"},
    "web": {"browser", "read", "snapshot", "warc", "formats"},
    "services": {"write", "browser", "read", "proofs", "snapshot", "warc", "formats"},
    "demo": set(),
    "cli": {"services", "web", "read", "write", "browser", "proofs", "snapshot", "warc", "formats", "demo"},
    "root": {"write", "read", "proofs"},
    "__main__": {"cli"},
}
MAX_LINES = 400
WARN_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def sources() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def group(module: str) -> str:
    """The subpackage a module belongs to: 'write' for archive.write.fetch, 'errors' for a
    top-level module, 'root' for archive itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


@cache
def imports(path: Path) -> frozenset[str]:
    """Every module name `path` imports, anywhere in it (lazy imports too), made absolute."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            # `from archive.read import verify` imports the module archive.read.verify
            names |= {f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in sources()}
    return frozenset(names)


def internal_imports(module: str) -> set[str]:
    """The package's own modules that `module` imports (a package counts as its __init__)."""
    return {name for name in imports(sources()[module]) if name in sources() and name != module}


def files_importing(library: str) -> set[str]:
    """Paths (relative to archive/) of the modules that import `library` or a part of it."""
    return {str(p.relative_to(PACKAGE)) for p in sources().values()
            if any(n == library or n.startswith(library + ".") for n in imports(p))}


def test_dependencies_point_one_way():
    wrong = []
    for module in sources():
        mine = group(module)
        for target in internal_imports(module):
            theirs = group(target)
            if theirs == mine or theirs in TOP:
                continue
            if theirs == "root" or theirs not in ALLOWED.get(mine, set()):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the table in ALLOWED:\n" + "\n".join(sorted(wrong))


def test_every_subpackage_is_in_the_table_and_says_what_it_may_import():
    groups = {group(m) for m in sources()} - TOP
    assert groups <= set(ALLOWED), f"subpackages missing from ALLOWED: {groups - set(ALLOWED)}"
    for name in groups - {"root", "__main__"}:
        init = PACKAGE / name / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init} should say what the subpackage may import"


def test_no_import_cycles():
    graph = {m: internal_imports(m) for m in sources()}
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_a_cycle_and_a_wrong_import(tmp_path, monkeypatch):
    """The rules above can fail: a planted cycle and an upward import are both caught."""
    fake = tmp_path / "archive"
    (fake / "warc").mkdir(parents=True)
    (fake / "read").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "warc" / "__init__.py").write_text('"""may import nothing"""\n')
    (fake / "read" / "__init__.py").write_text('"""may import warc"""\n')
    (fake / "warc" / "a.py").write_text("from archive.read.b import x\n")
    (fake / "read" / "b.py").write_text("def f():\n    from archive.warc import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    sources.cache_clear()
    imports.cache_clear()
    try:
        failures = []
        for check in (test_dependencies_point_one_way, test_no_import_cycles):
            try:
                check()
            except AssertionError as exc:
                failures.append(str(exc))
        assert len(failures) == 2
        assert "archive.warc.a -> archive.read.b" in failures[0]
        assert "archive.read.b -> archive.warc.a -> archive.read.b" in failures[1]
    finally:
        sources.cache_clear()
        imports.cache_clear()


def test_requests_and_urllib3_only_in_fetch():
    assert files_importing("requests") == {"write/fetch.py"}
    assert files_importing("urllib3") <= {"write/fetch.py"}


def test_html_parsers_only_in_the_html_readers():
    # extract.py reads links and html.py the text a reader sees (lxml events); metadata.py
    # reads what a page says about itself (a bs4 tree of its meta and script elements).
    assert files_importing("bs4") == {"read/metadata.py"}
    assert files_importing("lxml") == {"write/extract.py", "formats/html.py"}


def test_css_tokenizer_only_in_write_css():
    # CSS is read with tinycss2 in one place (write/css.py), never with regular expressions
    assert files_importing("tinycss2") == {"write/css.py"}


def test_url_parser_only_in_formats_urls():
    # one WHATWG URL Standard parser (ada-url), in one place, for extraction, scope and the index
    assert files_importing("ada_url") == {"formats/urls.py"}


def test_crypto_libraries_only_in_proofs():
    for library in ("cryptography", "asn1crypto"):
        # and the browser's per-capture CA (write/mitm.py)
        found = files_importing(library)
        assert {f.split("/")[0] for f in found - {"write/mitm.py"}} <= {"proofs"}, library


def test_celery_and_redis_only_in_services():
    for library in ("celery", "redis"):
        assert {f.split("/")[0] for f in files_importing(library)} <= {"services"}, library


def test_web_framework_only_in_web():
    for library in ("starlette", "uvicorn", "jinja2", "markupsafe"):
        assert {f.split("/")[0] for f in files_importing(library)} <= {"web"}, library


def test_warc_written_only_in_warc():
    # the writer writes record heads itself (see its docstring); no module uses warcio's
    # writer, and only archive/warc writes WARC bytes.
    writers = {p for p in sources().values()
               if any(n.startswith("warcio.warcwriter") or n.startswith("warcio.recordbuilder")
                      for n in imports(p))}
    assert writers == set()
    heads = {str(p.relative_to(PACKAGE)) for p in sources().values()
             if 'b"WARC/1.1' in p.read_text() or "WARC_VERSION," in p.read_text()}
    assert heads <= {"warc/writer.py"}


def test_read_side_never_imports_the_write_path():
    for module in sources():
        if group(module) in ("read", "web", "snapshot", "proofs", "warc", "formats"):
            assert not {t for t in internal_imports(module) if group(t) == "write"}, module


def test_only_the_command_line_prints():
    for module, path in sources().items():
        if group(module) == "cli":
            continue
        calls = [n for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
        assert not calls, f"{module} prints"


def test_modules_stay_small():
    long = {m: n for m, p in sources().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
    for module, path in sources().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > WARN_FUNCTION_LINES:
                    warnings.warn(f"{module}.{node.name} is {length} lines (over {WARN_FUNCTION_LINES})",
                                  stacklevel=1)


def test_public_api():
    import archive

    for name in ("capture", "verify", "CaptureOptions", "Snapshot", "ArchiveError", "new_key", "sign",
                 "timestamp", "__version__"):
        assert getattr(archive, name) is not None, name
    assert callable(archive.capture) and callable(archive.verify)


def test_pillow_in_the_read_side_only_in_compare():
    used = files_importing("PIL")
    assert "web/compare.py" in used
    assert not {f for f in used if f.split("/")[0] in ("web", "read", "snapshot", "warc", "formats", "proofs")
                and f != "web/compare.py"}
