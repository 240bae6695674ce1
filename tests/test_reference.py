"""The reference that cannot drift: the docs' tables of config keys and commands, the man page and
the bash completion are made from the code, and a page that differs from what the code makes
fails here (run `python -m guardd.cli.reference docs` to bring it up to date)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT

from guardd.cli import reference
from guardd.cli.main import build_parser
from guardd.cli.parserinfo import commands
from guardd.cli.settingsinfo import keys
from guardd.config.settings import Config


def test_the_docs_tables_are_what_the_code_makes_now():
    assert reference.stale() == [], "run: python -m guardd.cli.reference docs"


def test_every_key_and_every_command_is_in_the_docs():
    """The keys the issue found missing, and each one the loader knows, by its dotted name."""
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    for key in ("wake.thresholds", "wake.verify", "wake.gate_silence", "wyoming.listen", "wyoming.allow",
                "wyoming.name", "wyoming.advertise", *(k.name for k in keys())):
        assert f"| `{key}` |" in configuration, key
    commands_md = (ROOT / "docs" / "commands.md").read_text()
    for name in ("export", "log init", "history", "recordings", "report", *(c.name for c in commands(build_parser()))):
        assert f"| `guardd {name}" in commands_md, name


@dataclasses.dataclass(frozen=True)
class LaterSection:
    """A section someone adds later, as the settings classes are written."""

    listen: str | None = None  # "HOST:PORT" for the new thing; None: off
    # The pre-shared key, written as another engineer would: comments above the field.
    encryption_key: str = ""


def test_a_key_added_to_the_code_is_in_the_table_with_no_more_work_and_the_check_fails_until_regenerated(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Grown(Config):
        later: LaterSection = LaterSection()

    found = {k.name: k for k in keys(Grown)}
    assert found["later.listen"].meaning == '"HOST:PORT" for the new thing; None: off'
    assert found["later.listen"].default == "null" and found["later.listen"].kind == "a string or null"
    assert found["later.encryption_key"].meaning == ("The pre-shared key, written as another engineer would: "
                                                     "comments above the field.")
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    assert reference.stale(docs) == []
    page = (docs / "configuration.md").read_text()
    grown = page.replace("| `wake.gate_silence` |", "| `wake.gate_silence_old` |")
    (docs / "configuration.md").write_text(grown)
    assert reference.stale(docs) == ["configuration.md"]  # a hand edit inside the markers is caught too
    reference.write_docs(docs)
    assert reference.stale(docs) == [] and (docs / "configuration.md").read_text() == page


def test_a_command_added_to_the_parser_changes_the_table():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    extra = sub.add_parser("pair-remote", help="pair a remote button")
    extra.add_argument("--config", metavar="PATH")
    extra.add_argument("--write", action="store_true", help="put it in the config")
    table = reference.commands_table(commands(parser))
    assert "| `guardd pair-remote [--write]` | pair a remote button |" in table
    assert "- `guardd pair-remote`: `--write`: put it in the config" in table
    assert reference.rewrite((ROOT / "docs" / "commands.md").read_text(), "commands", table) != \
        (ROOT / "docs" / "commands.md").read_text()


def test_a_page_without_its_markers_is_an_error_that_names_them():
    with pytest.raises(ValueError, match="no markers for 'commands'"):
        reference.rewrite("# Commands\n", "commands", "| table |")


def generated(what: str) -> str:
    return subprocess.run([sys.executable, "-m", "guardd.cli.reference", what], capture_output=True, text=True,
                          check=True, cwd=ROOT, timeout=60).stdout


def test_the_man_page_renders_without_a_warning_and_describes_every_command(tmp_path):
    page = tmp_path / "guardd.1"
    page.write_text(generated("man"))
    checked = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    shown = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANWIDTH="120", MAN_KEEP_FORMATTING="0"))
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    text = re.sub(".\b", "", shown.stdout)  # bold and underline are overstruck when not on a terminal
    assert text.startswith("GUARDD(1)")
    for c in commands(build_parser()):
        assert f"guardd {c.name}" in text, c.name
    assert "guardd log init" in text and "78 a bad config" in text and "GUARDD_SOCKET" in text


BASH = shutil.which("bash")


def complete(script: Path, line: str, cwd: Path) -> list[str]:
    """What Tab offers after `line` in a real bash that sourced the completion."""
    driver = ('source "$1"; read -ra COMP_WORDS <<<"$2"; [[ $2 == *" " ]] && COMP_WORDS+=("");'
              'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _guardd; printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run([BASH, "--norc", "--noprofile", "-c", driver, "_", str(script), line], capture_output=True,
                          text=True, timeout=30, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


@pytest.mark.skipif(BASH is None, reason="no bash")
def test_bash_completes_commands_options_files_and_words(tmp_path):
    script = tmp_path / "guardd.bash"
    script.write_text(generated("bash"))
    (tmp_path / "mine.yaml").write_text("")
    (tmp_path / "state").mkdir()
    assert complete(script, "guardd hi", tmp_path) == ["history"]
    assert complete(script, "guardd re", tmp_path) == ["replay", "recordings", "report"]
    assert complete(script, "guardd -v sta", tmp_path) == ["status"]
    assert complete(script, "guardd run --con", tmp_path) == ["--config"]
    assert complete(script, "guardd run --config mi", tmp_path) == ["mine.yaml"]
    assert complete(script, "guardd history --config m", tmp_path) == ["mine.yaml"]
    assert complete(script, "guardd run --mi", tmp_path) == ["--microphone"]
    assert complete(script, "guardd log --type un", tmp_path) == ["unfinished", "unmute"]
    assert complete(script, "guardd log i", tmp_path) == ["init"]
    assert complete(script, "guardd export --dir st", tmp_path) == ["state"]
    assert complete(script, "guardd replay --press-at ", tmp_path) == []  # seconds: nothing to offer
    installed = subprocess.run([BASH, "--norc", "-c", 'source "$1"; complete -p guardd', "_", str(script)],
                               capture_output=True, text=True, timeout=30)
    assert installed.stdout.strip() == "complete -o bashdefault -o filenames -F _guardd guardd"
    if shutil.which("shellcheck"):
        lint = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True, timeout=60)
        assert lint.returncode == 0, lint.stdout
