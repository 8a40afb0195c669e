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
import os
import select
import sys
from pathlib import Path

from archive.errors import ArchiveError, NoAnswer
from archive.version import __version__

from .common import error, printable, safe_output

# capture (requests, lxml) and find (surt) are imported by the commands that use them, so
# `archive verify` starts fast.

logger = logging.getLogger("archive")
DESCRIPTION = ("Capture web pages into verifiable, citable snapshots (WARC 1.1 records in an unzipped "
               "WACZ package whose id is its digest); verify, cite, compare, export, replay and "
               "schedule them.")
EPILOG = ("Exit codes: 0 success, 1 integrity failure, 2 usage error / not a snapshot / I/O error, "
          "3 no seed answered, 4 interrupted or disk full (partial capture kept). "
          "Run `archive COMMAND -h` for a command's options.")
# Modules with a `register(subparsers, common)` adding their own subcommands, in help order
# (scale adds to upkeep's `schedule`, so it comes after it).
COMMAND_MODULES: tuple[str, ...] = ("capture", "read", "web", "qa", "upkeep", "proof", "scale")


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
        code = int(args.run(args))
        sys.stdout.flush()   # a closed pipe shows here, not at the interpreter's exit
        return code
    except BrokenPipeError as exc:
        if _stdout_gone():
            return _closed_pipe()
        error(f"broken pipe: {exc}")
        return 2
    except NoAnswer as exc:   # one line per seed: which failed, and how
        error(f"no HTTP answer from any seed; no snapshot written ({len(exc.failures)} failed)")
        for url, why in exc.failures.items():
            error(f"seed {printable(url)}: {printable(str(why))}")
        return exc.exit_code
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


def _stdout_gone() -> bool:
    """Return True when stdout is a pipe whose reader has gone (so the broken pipe was ours)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):   # no descriptor to ask: take it as ours
        return True


def _closed_pipe() -> int:
    """The reader of stdout went away (`archive show X | head`): end quietly, as Unix tools do.

    stdout is pointed at /dev/null so the interpreter's own flush at exit finds nothing to
    complain about; 141 is what a shell reports for a process ended by SIGPIPE.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):   # a stdout without a file descriptor (captured in tests)
        pass
    return 141


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-C", "--collection", type=Path, default=None,
                        help="the collection folder (default: $ARCHIVE_COLLECTION or ./snapshots)")
    common.add_argument("--json", action="store_true", help="same as --format json")
    common.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr (capture: also each URL as it finishes)")

    parser = argparse.ArgumentParser(prog="archive", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"archive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module in COMMAND_MODULES:
        importlib.import_module(f".{module}", __package__).register(sub, common)
    return parser
