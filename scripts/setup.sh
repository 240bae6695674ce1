#!/usr/bin/env bash
# Sets up a development copy of guardd: the Debian packages it needs and a venv in .venv with
# guardd installed (editable), the wake word models, and its test tools. Safe to run again; it
# only adds what is missing.
#
#   bash scripts/setup.sh             all of it (what scripts/test.sh runs)
#   bash scripts/setup.sh --runtime   only what guardd runs (what scripts/demo.sh runs): no test
#                                     tools, and no stock openWakeWord with its scipy and
#                                     scikit-learn (the tests compare guardd with it)
set -euo pipefail
cd "$(dirname "$0")/.."

# libportaudio2: sounddevice's PortAudio. espeak-ng and sox: the generated test and demo speech.
# alsa-utils: the ALSA configuration the tests' file-plugin microphone needs.
packages=(libportaudio2 espeak-ng sox alsa-utils python3-venv)
extra="[test]"
case "${1:-}" in
    "") # For the tests only: shellcheck lints the installer, systemd-analyze scores the unit (no
        # systemd needs to run), chromium renders `guardd report`'s page. The demo needs none.
        packages+=(shellcheck systemd chromium) ;;
    --runtime) extra="" ;;
    *) echo "usage: bash scripts/setup.sh [--runtime]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# The wake word models come in a wheel installed without its requirements (pyproject.toml,
# [tool.guardd] models, says why); the test extra adds them back, for the stock comparison.
models=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["guardd"]["models"])')
# pip's build chatter goes to a log; it is shown only when the install fails.
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q -e ".$extra" &&
       .venv/bin/python -m pip install -q --no-deps "$models"; } >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    echo "setup: pip install failed (log above)" >&2
    exit 1
fi
# The editable install finds guardd through an import hook that Python asks only after every
# sys.path entry. So in a folder holding the clone (a folder named guardd, without __init__.py),
# `python -m guardd` took that folder for a namespace package and failed ("cannot import name
# '__version__' ... (unknown location)"). The clone itself on sys.path, through a plain .pth
# file, wins: a regular package beats a namespace portion wherever it comes on sys.path.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$PWD" >"$site/guardd-clone.pth"
