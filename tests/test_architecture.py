"""House rules a test can check: one outside library, one module; the read side never fetches."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "archive"


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level
            names.add(prefix + (node.module or ""))
    return names


def modules_importing(prefix: str) -> set[str]:
    return {p.name for p in PACKAGE.glob("*.py")
            if any(n == prefix or n.startswith(prefix + ".") for n in imports(p))}


def test_requests_and_urllib3_only_in_fetch():
    assert modules_importing("requests") == {"fetch.py"}
    assert modules_importing("urllib3") <= {"fetch.py"}


def test_html_parsers_only_in_the_html_readers():
    # extract.py reads links (lxml events); metadata.py reads what a page says about itself
    # (a bs4 tree of its meta and script elements).
    assert modules_importing("bs4") == {"metadata.py"}
    assert modules_importing("lxml") == {"extract.py"}


def test_warc_written_only_in_warc():
    # warc.py writes record heads itself (see its docstring); no module uses warcio's writer,
    # and only warc.py writes WARC bytes.
    writers = {p.name for p in PACKAGE.glob("*.py")
               if any(n.startswith("warcio.warcwriter") or n.startswith("warcio.recordbuilder")
                      for n in imports(p))}
    assert writers == set()
    heads = {p.name for p in PACKAGE.glob("*.py") if 'b"WARC/1.1' in p.read_text() or "WARC_VERSION," in p.read_text()}
    assert heads <= {"warc.py"}


def test_read_side_never_imports_fetch_or_crawl():
    for name in ("verify.py", "store.py", "index.py", "package.py", "depends.py", "audit.py", "export.py",
                 "replay.py", "find.py"):
        assert not {".fetch", ".crawl", ".capture"} & imports(PACKAGE / name), name


def test_only_cli_prints():
    # cli.py and the command groups it registers (cli_*.py) are the command line
    for path in PACKAGE.glob("*.py"):
        if path.name == "cli.py" or path.name.startswith("cli_"):
            continue
        calls = [n for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
        assert not calls, f"{path.name} prints"
