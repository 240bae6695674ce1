"""The reference that cannot drift: docs/configuration.md's table of keys and docs/commands.md's
table of commands are made from the settings classes and the argument parser, and written
between markers in those pages; the man page and the bash completion are made the same way.

    python -m guardd.cli.reference docs      rewrite the generated parts of the docs
    python -m guardd.cli.reference check     exit 1 naming each page whose generated part is stale
    python -m guardd.cli.reference man       the man page (roff) on stdout
    python -m guardd.cli.reference bash      the bash completion on stdout
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from guardd.cli.parserinfo import Argument, Command, commands

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
BEGIN = "<!-- generated: {name} (python -m guardd.cli.reference docs); edit the code, not this -->"
END = "<!-- end of generated: {name} -->"


def _md(text: str, code: bool = False) -> str:
    """Text for a cell of a Markdown table (inside a code span with `code`)."""
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if code else text.replace("<", "&lt;").replace(">", "&gt;")


def config_table() -> str:
    from guardd.cli.settingsinfo import keys

    rows = ["| key | meaning | value | default |", "|---|---|---|---|"]
    for key in keys():
        value = key.kind + (f", {key.limits}" if key.limits else "")
        rows.append(f"| `{key.name}` | {_md(key.meaning)} | {_md(value)} | {_md(key.default)} |")
    return "\n".join(rows)


def _option(a: Argument) -> str:
    flags = ", ".join(f"{f} {a.metavar}".strip() for f in a.flags) if a.flags else a.metavar
    help_ = a.help.removeprefix(f"{a.metavar}: ")  # (`init: make ...` beside `init`)
    listed = ", ".join(a.choices)
    choices = f" (one of: {listed})" if len(a.choices) > 1 and listed not in a.help else ""
    return f"`{_md(flags, code=True)}`{' (required)' if a.required and a.flags else ''}: {_md(help_ + choices)}"


def commands_table(found: list[Command] | None = None) -> str:
    from guardd.cli.main import build_parser

    found = found if found is not None else commands(build_parser())
    rows = ["| command | what it does |", "|---|---|"]
    for c in found:
        rows.append(f"| `{_md(c.usage, code=True)}` | {_md(c.help)} |")
        for usage, help_ in c.actions():
            rows.append(f"| `{_md(usage, code=True)}` | {_md(help_.split(': ', 1)[-1])} |")
    rows.append("")
    rows.append("Every command also takes `--config PATH` (the config file; default `$GUARDD_CONFIG`, then "
                "`/etc/guardd/guardd.yaml`, then the built-in defaults) and `-h`. Each command's arguments:")
    rows.append("")
    for c in found:
        if c.arguments:
            rows.append(f"- `guardd {c.name}`: " + "; ".join(_option(a) for a in c.arguments)
                        + (f". {_md(c.epilog)}" if c.epilog else ""))
    return "\n".join(rows)


GENERATED = {  # page: {part name: what makes it}
    "configuration.md": {"config-keys": config_table},
    "commands.md": {"commands": commands_table},
}


def rewrite(text: str, name: str, body: str) -> str:
    """`text` with the part between the markers of `name` replaced by `body`."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    pattern = re.compile(re.escape(begin) + r"\n(?:.*?\n)?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"no markers for {name!r}: put {begin!r} and {end!r} on lines of their own")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


def stale(docs: Path = DOCS) -> list[str]:
    """The pages whose generated parts differ from what the code makes now."""
    found = []
    for page, parts in GENERATED.items():
        text = (docs / page).read_text(encoding="utf-8")
        fresh = text
        for name, make in parts.items():
            fresh = rewrite(fresh, name, make())
        if fresh != text:
            found.append(page)
    return found


def write_docs(docs: Path = DOCS) -> list[str]:
    changed = []
    for page, parts in GENERATED.items():
        path = docs / page
        text = path.read_text(encoding="utf-8")
        fresh = text
        for name, make in parts.items():
            fresh = rewrite(fresh, name, make())
        if fresh != text:
            path.write_text(fresh, encoding="utf-8")
            changed.append(page)
    return changed


def main(argv: list[str]) -> int:
    what = argv[0] if argv else ""
    if what == "docs":
        for page in write_docs():
            print(f"rewrote docs/{page}")
        return 0
    if what == "check":
        pages = stale()
        for page in pages:
            print(f"docs/{page} is stale: run python -m guardd.cli.reference docs", file=sys.stderr)
        return 1 if pages else 0
    if what == "man":
        from guardd.cli.manpage import man_page

        sys.stdout.write(man_page())
        return 0
    if what == "bash":
        from guardd.cli.completion import bash_completion

        sys.stdout.write(bash_completion())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
