"""bash completion for guardd, made from the argument parser (parserinfo.py): the commands, each
command's options, file and directory names where an argument is a path, and the fixed words
(`log --type`, `log init`). Self-contained: it needs no bash-completion helpers."""

from __future__ import annotations

import shlex

from guardd.cli.parserinfo import Argument, Command, commands, global_options

TEMPLATE = r"""# bash completion for guardd {version}: made from its argument parser by
# `python -m guardd.cli.reference bash`; scripts/install.sh installs it. Do not edit.
_guardd_reply() {{  # COMPREPLY from compgen's words for the word being completed ($cur)
    mapfile -t COMPREPLY < <(compgen "$@" -- "$cur")
}}
_guardd() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} cmd="" i
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in
            -*) ;;
            *) cmd=${{COMP_WORDS[i]}}; break ;;
        esac
    done
    if [ -z "$cmd" ]; then
        _guardd_reply -W {commands}
        return 0
    fi
    case "$cmd $prev" in
{values}
    esac
    if [[ $cur == -* ]]; then
        case "$cmd" in
{options}
        esac
        return 0
    fi
    case "$cmd" in
{positionals}
    esac
    return 0
}}
complete -o filenames -o bashdefault -F _guardd guardd
"""


def _reply(a: Argument) -> str:
    """The bash that completes a value of `a`, or "" when nothing can be offered (a number, a key)."""
    if a.completes == "words":
        return f"_guardd_reply -W {shlex.quote(' '.join(a.choices))}"
    if a.completes == "dir":
        return "_guardd_reply -d"
    if a.completes == "file":
        return "_guardd_reply -f"
    return ""


def _value_cases(found: list[Command]) -> list[str]:
    cases = ['        *" --config") _guardd_reply -f; return 0 ;;']
    for c in found:
        for a in c.options:
            if not a.takes_value:
                continue
            reply = _reply(a) or "COMPREPLY=()"
            pattern = "|".join(shlex.quote(f"{c.name} {flag}") for flag in a.flags)
            cases.append(f"        {pattern}) {reply}; return 0 ;;")
    return cases


def _option_cases(found: list[Command]) -> list[str]:
    cases = []
    for c in found:
        flags = sorted({f for a in c.options for f in a.flags} | {"--config", "--help"})
        cases.append(f"            {shlex.quote(c.name)}) _guardd_reply -W {shlex.quote(' '.join(flags))} ;;")
    return cases


def _positional_cases(found: list[Command]) -> list[str]:
    cases = []
    for c in found:
        replies = [r for r in (_reply(a) for a in c.positionals) if r]
        if replies:
            cases.append(f"        {shlex.quote(c.name)}) {replies[0]} ;;")
    return cases


def bash_completion() -> str:
    from guardd import __version__
    from guardd.cli.main import build_parser

    parser = build_parser()
    found = commands(parser)
    words = [c.name for c in found] + [f for a in global_options(parser) for f in a.flags]
    return TEMPLATE.format(version=__version__, commands=shlex.quote(" ".join(words)),
                           values="\n".join(_value_cases(found)), options="\n".join(_option_cases(found)),
                           positionals="\n".join(_positional_cases(found)))


