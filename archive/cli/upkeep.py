"""The collection-upkeep commands: `schedule`, `audit`, `index` and `rm`."""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from archive.errors import ScheduleBusy, UsageError
from archive.models import CaptureOptions

from .capture import capture_options, options_of, typed_urls
from .common import command, write_json


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the upkeep subcommands to the `archive` parser."""
    sched = command(sub, common, "schedule", None, "recurring captures of the collection",
                    "Recurring captures: the schedule lives in <collection>/schedule.toml (edit it by "
                    "hand or with these commands).", formats=None)
    ssub = sched.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    add = command(ssub, common, "add", _cmd_schedule_add, "capture URL on a schedule (due at once)",
                  "Add URL to the collection's schedule.toml (creating the collection if need be), "
                  "with the capture options given; it is due at once. A URL already scheduled has "
                  "its entry replaced, and the command says what changed.", formats=None)
    add.add_argument("url", metavar="URL", nargs="?")
    add.add_argument("--every", required=True, metavar="WHEN",
                     help="an interval (30m, 6h, 1d, 1w) or a cron expression in UTC, e.g. '0 3 * * 1'")
    add.add_argument("--audit", action="store_true", help="schedule `archive audit` instead of a capture")
    capture_options(add)
    command(ssub, common, "list", _cmd_schedule_list, "entries, next due times and last results")
    rm = command(ssub, common, "remove", _cmd_schedule_remove, "take URL (or 'audit') off the schedule",
                 formats=None)
    rm.add_argument("url", metavar="URL")
    run = command(ssub, common, "run", _cmd_schedule_run, "run what is due, once (for cron or a timer)")
    run.add_argument("--forever", action="store_true", help="keep running, waking when the next capture is due")
    command(ssub, common, "cron-line", _cmd_cron_line, "print a crontab line running the schedule", formats=None)

    idx = command(sub, common, "index", _cmd_index, "the collection's catalogue (list, search, dedup)",
                  "The catalogue in .state/catalogue.sqlite3 is a cache of what the snapshot folders "
                  "say, kept current by every command; --rebuild makes it again from the folders.")
    idx.add_argument("--rebuild", action="store_true", required=True, help="rebuild it from the snapshots")

    aud = command(sub, common, "audit", _cmd_audit, "re-verify every snapshot (a fixity check)",
                  "Verify every snapshot of the collection, revisit references included, in parallel; "
                  "resumable; results appended to .state/audit.jsonl.")
    aud.add_argument("--workers", type=int, default=2, help="snapshots checked at once (default: %(default)s)")

    rem = command(sub, common, "rm", _cmd_rm, "remove a snapshot (refused while others depend on it)",
                  "Remove a snapshot from the collection: lists what will go and asks first on a "
                  "terminal; elsewhere (a script, a pipe) --yes is needed. Refused while other "
                  "snapshots' revisits refer to it, unless --with-dependents.")
    rem.add_argument("snapshot", metavar="SNAPSHOT")
    rem.add_argument("--with-dependents", action="store_true",
                     help="also remove the snapshots whose revisits refer to it")
    rem.add_argument("-y", "--yes", action="store_true", help="remove without asking")


# -- schedule -----------------------------------------------------------------------------------
def _cmd_schedule_add(args: argparse.Namespace) -> int:
    from archive.services.schedule import AUDIT, Schedule

    if args.audit == bool(args.url):
        raise UsageError("schedule add takes a URL, or --audit")
    url = AUDIT if args.audit else typed_urls([args.url])[0]
    options = {} if args.audit else _changed_options(options_of(args))
    schedule = Schedule(args.collection)
    before = schedule.find(url) if schedule.path.is_file() else None
    entry = schedule.add(url, args.every, options)
    extra = "".join(f" {k}={v}" for k, v in entry.options.items())
    due = schedule.state().get(entry.url, {}).get("next_due") or "now"
    print(f"scheduled {entry.url} every {entry.every}{extra}; next due: {due}")
    if before is not None:
        print(f"archive: replaced the entry {before.url} had: {_changes(before, entry)}", file=sys.stderr)
    return 0


def _changes(before: Any, after: Any) -> str:
    """Return what changed between two schedule entries, for people: `every 1d -> 6h, depth 1 -> 2`."""
    old = {"every": before.every, **before.options}
    new = {"every": after.every, **after.options}
    changed = [f"{k} {old.get(k, 'default')} -> {new.get(k, 'default')}"
               for k in sorted(old.keys() | new.keys(), key=lambda k: (k != "every", k))
               if old.get(k) != new.get(k)]
    return ", ".join(changed) if changed else "nothing changed"


def _changed_options(options: CaptureOptions) -> dict[str, Any]:
    """Return the options that differ from the defaults, as TOML can hold them."""
    default = CaptureOptions()
    changed: dict[str, Any] = {}
    for f in fields(CaptureOptions):
        value = getattr(options, f.name)
        if value != getattr(default, f.name) and value is not None:
            changed[f.name] = [list(v) if isinstance(v, tuple) else v for v in value] \
                if isinstance(value, tuple) else value
    return changed


def _cmd_schedule_list(args: argparse.Namespace) -> int:
    from archive.services.schedule import Schedule

    schedule = Schedule(args.collection)
    schedule.store.require()
    state = schedule.state()
    rows = []
    for entry in schedule.entries():
        seen = state.get(entry.url, {})
        rows.append({"url": entry.url, "every": entry.every, "options": entry.options,
                     "next_due": seen.get("next_due") or "now", "retry_at": seen.get("retry_at"),
                     "failures": seen.get("failures", 0), "last_result": seen.get("last_result")})
    if args.format == "json":
        write_json(rows)
        return 0
    if not rows:
        print(f"nothing scheduled in {schedule.path} (add with: archive schedule add URL --every 1d)")
    for r in rows:
        last = r["last_result"]
        if last is None:
            outcome = "never run"
        elif last["ok"]:
            outcome = f"ok {str(last.get('snapshot') or '')[:12]} at {last['finished']}"
        else:
            outcome = f"FAILED at {last['finished']}: {last['error']}"
        retry = f"  retry at {r['retry_at']} (failures: {r['failures']})" if r["retry_at"] else ""
        print(f"{r['url']}  every {r['every']}  next {r['next_due']}  last: {outcome}{retry}")
    return 0


def _cmd_schedule_remove(args: argparse.Namespace) -> int:
    from archive.formats.urls import canonicalize
    from archive.services.schedule import AUDIT, Schedule

    url = args.url if args.url == AUDIT else canonicalize(args.url)
    schedule = Schedule(args.collection)
    schedule.store.require()
    if not schedule.remove(url):
        raise UsageError(f"{url} is not on the schedule")
    print(f"removed {url} from the schedule")
    return 0


def _cmd_schedule_run(args: argparse.Namespace) -> int:
    from archive.services.runner import run_due, run_forever

    def report(line: str) -> None:
        print(f"archive: {line}", file=sys.stderr)

    if args.forever:
        run_forever(args.collection, report=report)
        return 0
    try:
        results = run_due(args.collection, report=report)
    except ScheduleBusy as exc:
        # an overlapping cron start is normal: the run under way does the work
        report(str(exc))
        return 0
    if args.format == "json":
        write_json([r.to_json() for r in results])
    for r in results if args.format != "json" else []:
        print(f"{'ok' if r.ok else 'FAILED'}  {r.url}  " + (str(r.snapshot or "")[:12] if r.ok else str(r.error)))
    return 0 if all(r.ok for r in results) else 1


def _cmd_cron_line(args: argparse.Namespace) -> int:
    from archive.snapshot.store import Collection

    root = Collection(args.collection).require().root.resolve()
    command = f"{shlex.quote(sys.executable)} -m archive schedule run -C {shlex.quote(str(root))}"
    log = shlex.quote(str(root / ".state" / "schedule.log"))
    print("# m h dom mon dow: every minute; a run with nothing due does nothing, and an")
    print("# overlapping start leaves the work to the run under way")
    print(f"* * * * * {command} >> {log} 2>&1")
    return 0


# -- audit and rm -------------------------------------------------------------------------------
def _cmd_audit(args: argparse.Namespace) -> int:
    from archive.read.audit import audit

    if args.workers < 1:
        raise UsageError(f"--workers must be 1 or more, not {args.workers}")
    summary = audit(args.collection, workers=args.workers)
    if args.format == "json":
        write_json(summary.to_json())
        return 0 if summary.ok else 1
    resumed = f" (took up an interrupted audit: {summary.resumed} done before)" if summary.resumed else ""
    print(f"{'OK' if summary.ok else 'FAILED'} audit {summary.audit}: {len(summary.results)} snapshots, "
          f"{summary.failed} failed{resumed}")
    for r in summary.results:
        if not r.ok:
            print(f"  {r.snapshot[:12]}  {r.path}")
            for problem in r.problems:
                print(f"    {problem}")
    return 0 if summary.ok else 1


def _ask(doomed: list[Path]) -> bool:
    """Show what `rm` would remove and ask on the terminal; refuse when there is none to ask."""
    names = ", ".join(p.name for p in doomed)
    if not sys.stdin.isatty():
        raise UsageError(f"rm would remove {names}: not asking without a terminal; add --yes")
    for path in doomed:
        print(f"will remove {path}", file=sys.stderr)
    print(f"remove {len(doomed)} snapshot{'s' if len(doomed) > 1 else ''}? [y/N] ", end="",
          file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _cmd_index(args: argparse.Namespace) -> int:
    from archive.snapshot.catalogue import open_catalogue
    from archive.snapshot.store import Collection

    with open_catalogue(Collection(args.collection).require()) as catalogue:
        count = catalogue.rebuild()
        path = catalogue.path
    if args.format == "json":
        write_json({"catalogue": str(path), "snapshots": count})
    else:
        print(f"catalogue {path} rebuilt: {count} snapshot{'' if count == 1 else 's'}")
    return 0


def _cmd_rm(args: argparse.Namespace) -> int:
    from archive.snapshot.catalogue import remove

    removed = remove(args.snapshot, args.collection, with_dependents=args.with_dependents,
                     confirm=None if args.yes else _ask)
    if not removed:
        print("archive: nothing removed", file=sys.stderr)
    if args.format == "json":
        write_json([str(p) for p in removed])
    else:
        for path in removed:
            print(f"removed {path}")
    return 0
