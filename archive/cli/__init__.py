"""The `archive` command: argv -> one library call per subcommand -> exit code.

The only package that prints or configures logging. Each group of subcommands is a module
with a `register(subparsers, common)`; `common` holds what they share. Exit codes: 0 success
(also when a seed answered 4xx/5xx), 1 integrity failure, 2 usage error / not a snapshot / I/O
error, 3 no seed got an HTTP answer, 4 interrupted or disk full (partial capture kept).
May import every subpackage; nothing imports it.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from archive.errors import ArchiveError
from archive.version import __version__

from .common import error, safe_output

# capture (requests, lxml) and find (surt) are imported by the commands that use them, so
# `archive verify` starts fast.

logger = logging.getLogger("archive")
# Modules with a `register(subparsers, common)` adding their own subcommands, in help order
# (scale adds to upkeep's `schedule`, so it comes after it).
COMMAND_MODULES: tuple[str, ...] = ("capture", "read", "web", "upkeep", "proof", "scale")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code. Whatever it prints goes through
    `common.SafeStream`: text from pages and packages never reaches the terminal raw."""
    with safe_output():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="archive: %(levelname)s: %(message)s", stream=sys.stderr)
    if args.json:
        args.format = "json"
    try:
        return int(args.run(args))
    except ArchiveError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 4
    except Exception as exc:  # the last line of defence: one line, never a traceback
        logger.debug("internal error", exc_info=True)
        error(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)")
        if args.verbose:
            logging.exception("traceback")
        return 2



def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-C", "--collection", type=Path, default=None,
                        help="the collection folder (default: $ARCHIVE_COLLECTION or ./snapshots)")
    common.add_argument("--json", action="store_true", help="same as --format json")
    common.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")

    parser = argparse.ArgumentParser(prog="archive", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"archive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module in COMMAND_MODULES:
        importlib.import_module(f".{module}", __package__).register(sub, common)
    return parser
