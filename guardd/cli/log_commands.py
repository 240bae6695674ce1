"""`guardd log`, `guardd verify` and `guardd export`: the owner's commands on the audit log."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from guardd.cli.common import EXIT_FAILURE, EXIT_USAGE, load_config, state_and_log_dirs


def _key_dir(state_dir: Path, args: argparse.Namespace) -> Path | None:
    """The device's sealing key state: checked by verify so a clean cut of the tail shows."""
    keys = state_dir / "keys"
    return keys if keys.is_dir() or not getattr(args, "dir", None) else None


def key_values(args: argparse.Namespace) -> list[str]:
    """--key values: a verification key, or a file holding one per line."""
    keys = []
    for value in args.key or []:
        path = Path(value)
        if len(value) < 200 and path.is_file():
            keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
        else:
            keys.append(value)
    return keys


def cmd_log(args: argparse.Namespace) -> int:
    from guardd.auditlog import view as logview
    from guardd.auditlog.reading import read_records

    if args.action == "init":
        return _log_init(args)
    _, directory = state_and_log_dirs(args)
    if args.head:
        print(logview.head_of(directory))
        return 0
    try:
        since = logview.parse_time(args.since) if args.since else None
        until = logview.parse_time(args.until) if args.until else None
    except ValueError as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def show(record: dict) -> None:
        if logview.matches(record, args.type, since, until):
            print(json.dumps(record, sort_keys=True, separators=(",", ":")) if args.json
                  else logview.describe(record), flush=True)

    if not directory.is_dir():
        print(f"no log yet in {directory}", file=sys.stderr)
        if not args.follow:
            return 0
    else:
        records = [r for r in read_records(directory) if logview.matches(r, args.type, since, until)]
        if args.last is not None:
            records = records[len(records) - args.last :] if args.last else []
        for r in records:
            show(r)
    if args.follow:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        logview.follow(directory, show)
    return 0


def _log_init(args: argparse.Namespace) -> int:
    from guardd.auditlog.writer import AuditLog

    cfg = load_config(args)  # (it writes: a config with a problem is refused here)
    directory = Path(args.dir) if args.dir else cfg.state_path / "log"
    log_ = AuditLog(directory, key_dir=directory.parent / "keys",
                    rotation=cfg.log, announce_key=False)
    log_.open()
    try:
        if log_.verification_key is None:
            if log_.unsealed is None:
                print("guardd: error: the log is already sealed with a key; its verification key "
                      "was shown when it was made and is not kept on this device", file=sys.stderr)
                return EXIT_FAILURE
            log_.rekey(f"re-initialised by the owner: {log_.unsealed}"[:1000])
        key = log_.verification_key
    finally:
        log_.close()
    print("This is the log's verification key. Write it down or store it off this device: "
          "`guardd verify --key KEY` checks every seal with it. It is not shown again.", file=sys.stderr)
    print(key)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from guardd.auditlog.reading import read_records
    from guardd.auditlog.format import parse_head
    from guardd.auditlog.verify import verify
    from guardd.auditlog.sealing import parse_verification_key

    state_dir, directory = state_and_log_dirs(args)
    keys = key_values(args)
    try:
        for key in keys:
            parse_verification_key(key)
        if args.head:
            parse_head(args.head)
    except ValueError as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    count, problems = verify(directory, keys=keys, head=args.head, key_dir=_key_dir(state_dir, args))
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        print(f"{directory}: {len(problems)} problem(s) in {count} records")
        return EXIT_FAILURE
    for record in read_records(directory):
        if record.get("type") in ("recovery", "rekey", "retention"):
            detail = " ".join(f"{k}={v}" for k, v in sorted(record.items())
                              if k in ("set_aside", "skipped", "reason", "deleted_from", "deleted_through"))
            print(f"note seq {record.get('seq')}: {record.get('type')}: {detail}")
    seals = "and seals intact" if keys else "intact (seals not checked: pass --key)"
    head = f", head matches {args.head}" if args.head else ""
    print(f"{directory}: ok, {count} records, chain {seals}{head}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from guardd.auditlog.view import export

    state_dir, log_dir = state_and_log_dirs(args)
    try:
        _, _, problems = export(state_dir, log_dir, Path(args.out), key_values(args), sys.stdout)
    except (FileExistsError, OSError) as exc:
        print(f"guardd: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_FAILURE if problems else 0
