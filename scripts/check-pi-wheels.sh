#!/usr/bin/env bash
# Proves that guardd's pinned dependency set installs from wheels alone on 64-bit Raspberry Pi OS:
# Bookworm (Python 3.11, glibc 2.36) and Trixie (Python 3.13, glibc 2.41), both aarch64. A Pi
# cannot be relied on to compile numpy or onnxruntime, so a missing wheel is a broken install.
#
# It runs `pip download --only-binary=:all:` for that platform with the dependencies read from
# pyproject.toml (so the check cannot drift from them); pip resolves the whole tree, so every
# transitive dependency must have a wheel too. Needs the network (PyPI by default).
#
#   bash scripts/check-pi-wheels.sh            both targets; exit 0 only if both resolve
#   PI_TARGETS="3.13:41" bash scripts/check-pi-wheels.sh     just Trixie
#
# Environment: PYTHON (3.11+ with pip, for tomllib; default .venv/bin/python, else python3),
# PI_WHEELS_INDEX_URL (default: pip's own default index), KEEP_WHEELS=1 to keep the downloads
# (their directory is printed).
# The machine's own pip configuration is ignored (PIP_CONFIG_FILE=/dev/null, --isolated) so that
# local mirrors, find-links or constraints cannot make the answer differ from what a Pi gets.
set -euo pipefail
cd "$(dirname "$0")/.."

# The dev venv (scripts/setup.sh) has pip; Debian's own python3 may not.
default_python=python3
[ ! -x .venv/bin/python ] || default_python=.venv/bin/python
python=${PYTHON:-$default_python}
index_args=()
[ -z "${PI_WHEELS_INDEX_URL:-}" ] || index_args=(--index-url "$PI_WHEELS_INDEX_URL")
# python-version:glibc-minor. Raspberry Pi OS Bookworm ships Python 3.11 on glibc 2.36, Trixie
# Python 3.13 on glibc 2.41; pip on the Pi accepts every manylinux tag up to its glibc.
read -r -a targets <<<"${PI_TARGETS:-3.11:36 3.13:41}"

"$python" -c 'import tomllib, pip' 2>/dev/null ||
    { echo "check-pi-wheels: error: $python lacks tomllib or pip (needs Python 3.11+ with pip; set PYTHON)" >&2; exit 1; }
mapfile -t deps < <("$python" -c '
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))')
[ "${#deps[@]}" -gt 0 ] || { echo "check-pi-wheels: error: no dependencies found in pyproject.toml" >&2; exit 1; }

work=$(mktemp -d)
if [ "${KEEP_WHEELS:-0}" = 1 ]; then
    echo "check-pi-wheels: downloads kept in $work"
else
    trap 'rm -rf "$work"' EXIT
fi

echo "check-pi-wheels: dependencies from pyproject.toml: ${deps[*]}"
failed=()
for target in "${targets[@]}"; do
    pyver=${target%%:*}
    glibc=${target##*:}
    platforms=(--platform manylinux2014_aarch64)
    for ((minor = 17; minor <= glibc; minor++)); do
        platforms+=(--platform "manylinux_2_${minor}_aarch64")
    done
    dest=$work/py$pyver
    mkdir -p "$dest"
    label="Python $pyver, aarch64, glibc 2.$glibc"
    if PIP_CONFIG_FILE=/dev/null "$python" -m pip --isolated --disable-pip-version-check download \
            --quiet --only-binary=:all: --implementation cp --python-version "$pyver" \
            "${platforms[@]}" "${index_args[@]}" --dest "$dest" "${deps[@]}" >"$dest.log" 2>&1; then
        shopt -s nullglob
        wheels=("$dest"/*.whl)
        others=()
        for f in "$dest"/*; do
            case "$f" in *.whl) ;; *) others+=("$(basename "$f")") ;; esac
        done
        shopt -u nullglob
        if [ "${#others[@]}" -gt 0 ]; then
            echo "FAIL  $label: not wheels: ${others[*]}"
            failed+=("$pyver")
            continue
        fi
        native=0
        for w in "${wheels[@]}"; do
            case "$w" in *-none-any.whl) ;; *) native=$((native + 1)) ;; esac
        done
        echo "ok    $label: ${#wheels[@]} wheels ($native built for aarch64, $(( ${#wheels[@]} - native )) pure Python)"
        for w in "${wheels[@]}"; do
            echo "        $(basename "$w")"
        done
    else
        echo "FAIL  $label: pip could not resolve the set from wheels:"
        sed 's/^/        /' "$dest.log"
        failed+=("$pyver")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "check-pi-wheels: error: no complete wheel set for Python ${failed[*]} on 64-bit Raspberry Pi OS" >&2
    exit 1
fi
echo "check-pi-wheels: every dependency installs from wheels on 64-bit Raspberry Pi OS (Python ${targets[*]%%:*})"
