#!/usr/bin/env bash
# Proves that guardd's pinned dependency set installs from wheels alone on 64-bit Raspberry Pi OS:
# Bookworm (Python 3.11, glibc 2.36) and Trixie (Python 3.13, glibc 2.41), both aarch64 (a Pi
# cannot be relied on to compile numpy or onnxruntime, so a missing wheel is a broken install),
# and says how much it weighs there.
#
# For each target it installs, with `pip install --target --only-binary=:all:` for that
# platform, what the installer puts into the venv: pyproject.toml's dependencies (pip resolves
# the whole tree, so every transitive dependency must have a wheel too) and the wake word models'
# wheel ([tool.guardd] models) without its requirements. Then it prints the size of that set,
# its heaviest packages, and the set plus a venv's own pip, against the 200 MB target. Each
# optional extra other than `test` is resolved too, and what it would add is printed (the
# installer does not install extras). Everything is read from
# pyproject.toml, so the check cannot drift from it. Needs the network (PyPI by default).
#
#   bash scripts/check-pi-wheels.sh            both targets; exit 0 only if both install and fit
#   PI_TARGETS="3.13:41" bash scripts/check-pi-wheels.sh     just Trixie
#
# Environment: PYTHON (3.11+ with pip, for tomllib; default .venv/bin/python, else python3),
# PI_WHEELS_INDEX_URL (default: pip's own default index), KEEP_WHEELS=1 to keep the installed
# sets (their directory is printed), PI_VENV_LIMIT_MB (default 200).
# The machine's own pip configuration is ignored (PIP_CONFIG_FILE=/dev/null, --isolated) so that
# local mirrors, find-links or constraints cannot make the answer differ from what a Pi gets.
# Byte-code (.pyc) is compiled by PYTHON, as pip on the Pi compiles it with the venv's Python;
# 3.13's files are about the size of 3.11's.
set -euo pipefail
cd "$(dirname "$0")/.."

# The dev venv (scripts/setup.sh) has pip; Debian's own python3 may not.
default_python=python3
[ ! -x .venv/bin/python ] || default_python=.venv/bin/python
python=${PYTHON:-$default_python}
limit_mb=${PI_VENV_LIMIT_MB:-200}
index_args=()
[ -z "${PI_WHEELS_INDEX_URL:-}" ] || index_args=(--index-url "$PI_WHEELS_INDEX_URL")
# python-version:glibc-minor. Raspberry Pi OS Bookworm ships Python 3.11 on glibc 2.36, Trixie
# Python 3.13 on glibc 2.41; pip on the Pi accepts every manylinux tag up to its glibc.
read -r -a targets <<<"${PI_TARGETS:-3.11:36 3.13:41}"

"$python" -c 'import tomllib, pip' 2>/dev/null ||
    { echo "check-pi-wheels: error: $python lacks tomllib or pip (needs Python 3.11+ with pip; set PYTHON)" >&2; exit 1; }
# One line per set: "deps" (the dependencies), "models" (the models' wheel), then "extra NAME"
# for each optional extra but test; each followed by its requirements, tab-separated.
mapfile -t sets < <("$python" -c '
import tomllib
with open("pyproject.toml", "rb") as f:
    data = tomllib.load(f)
project = data["project"]
print("\t".join(["deps", *project["dependencies"]]))
print("\t".join(["models", data["tool"]["guardd"]["models"]]))
for name, reqs in project.get("optional-dependencies", {}).items():
    if name != "test":
        print("\t".join([f"extra {name}", *reqs]))')
IFS=$'\t' read -r -a deps <<<"${sets[0]}"
IFS=$'\t' read -r -a models <<<"${sets[1]}"
deps=("${deps[@]:1}")
models=("${models[@]:1}")
if [ "${#deps[@]}" -eq 0 ] || [ "${#models[@]}" -ne 1 ]; then
    echo "check-pi-wheels: error: pyproject.toml lists no dependencies or no [tool.guardd] models" >&2
    exit 1
fi

work=$(mktemp -d)
if [ "${KEEP_WHEELS:-0}" = 1 ]; then
    echo "check-pi-wheels: installed sets kept in $work"
else
    trap 'rm -rf "$work"' EXIT
fi

mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

# What a venv adds by itself (pip; setuptools too on 3.11), measured on an empty one made by
# PYTHON: a Pi's venv is made by its own Python the same way. (PYTHON's pip may be a little
# older or newer than a Pi's.)
"$python" -m venv "$work/empty-venv" >/dev/null 2>&1 ||
    { echo "check-pi-wheels: error: $python cannot make a venv (python3-venv?)" >&2; exit 1; }
venv_kb=$(du -sk "$work/empty-venv" | cut -f1)

echo "check-pi-wheels: dependencies from pyproject.toml: ${deps[*]}; the models: ${models[0]} (without its requirements)"
failed=()
for target in "${targets[@]}"; do
    pyver=${target%%:*}
    glibc=${target##*:}
    platforms=(--platform manylinux2014_aarch64)
    for ((minor = 17; minor <= glibc; minor++)); do
        platforms+=(--platform "manylinux_2_${minor}_aarch64")
    done
    pip=(env PIP_CONFIG_FILE=/dev/null "$python" -m pip --isolated --disable-pip-version-check install
         --quiet --only-binary=:all: --implementation cp --python-version "$pyver" "${platforms[@]}" "${index_args[@]}")
    dest=$work/py$pyver
    label="Python $pyver, aarch64, glibc 2.$glibc"
    if ! { "${pip[@]}" --target "$dest" "${deps[@]}" &&
           "${pip[@]}" --target "$dest" --no-deps "${models[@]}"; } >"$dest.log" 2>&1; then
        echo "FAIL  $label: pip could not install the set from wheels:"
        sed 's/^/        /' "$dest.log"
        failed+=("$pyver")
        continue
    fi
    mapfile -t dists < <(find "$dest" -maxdepth 1 -name '*.dist-info' -printf '%f\n' | sed 's|\.dist-info$||' | sort)
    native=0
    for d in "${dists[@]}"; do
        grep -qs '^Tag: .*-none-any$' "$dest/$d.dist-info/WHEEL" || native=$((native + 1))
    done
    set_kb=$(du -sk "$dest" | cut -f1)
    models_kb=$(du -sck "$dest/${models[0]%%=*}" "$dest/${models[0]%%=*}"-*.dist-info | tail -1 | cut -f1)
    # A package both in the set and in the empty venv (setuptools, on 3.11) is installed once.
    both_kb=$("$python" - "$work/empty-venv" "$dest" <<'PY'
import os, re, sys
from pathlib import Path

def dists(folder):
    return {re.sub(r"[-_.]+", "-", d.name.split("-")[0]).lower(): d for d in Path(folder).glob("*.dist-info")}

venv = dists(next(Path(sys.argv[1]).glob("lib/python3*/site-packages")))
total = 0
for name in venv.keys() & dists(sys.argv[2]).keys():
    for line in (venv[name] / "RECORD").read_text().splitlines():
        path = venv[name].parent / line.split(",")[0]
        total += path.stat().st_size if path.is_file() else 0
print(total // 1024)
PY
)
    total_kb=$((set_kb + venv_kb - both_kb))
    verdict=ok
    [ "$total_kb" -le $((limit_mb * 1024)) ] || verdict=FAIL
    echo "$verdict $(printf '%*s' $((5 - ${#verdict})) '')$label: ${#dists[@]} wheels ($native built for aarch64), $(mb "$set_kb") MB installed;" \
         "with a venv's own pip, $(mb "$total_kb") MB (limit $limit_mb MB)"
    echo "        ${dists[*]}"
    echo "        heaviest: $(cd "$dest" && du -sk -- */ | sort -rn | head -6 |
                                 awk '{ sub("/$", "", $2); printf "%s%s %.1f MB", sep, $2, $1 / 1024; sep = ", " }')"
    [ "$verdict" = ok ] || failed+=("$pyver")
    for line in "${sets[@]:2}"; do
        IFS=$'\t' read -r -a extra <<<"$line"
        name=${extra[0]#extra }
        if ! "${pip[@]}" --target "$work/py$pyver-$name" "${deps[@]}" "${extra[@]:1}" >"$dest-$name.log" 2>&1; then
            echo "FAIL  $label: the extra [$name] does not install from wheels:"
            sed 's/^/        /' "$dest-$name.log"
            failed+=("${pyver}[$name]")
        else
            # What it adds to the venv: its set against the same dependencies without the models.
            extra_kb=$(( $(du -sk "$work/py$pyver-$name" | cut -f1) - (set_kb - models_kb) ))
            echo "ok    $label: the extra [$name] installs too and adds $(mb "$extra_kb") MB" \
                 "(a venv with it: $(mb $((total_kb + extra_kb))) MB)"
        fi
    done
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "check-pi-wheels: error: no complete wheel set within $limit_mb MB for Python ${failed[*]} on 64-bit Raspberry Pi OS" >&2
    exit 1
fi
echo "check-pi-wheels: every dependency installs from wheels on 64-bit Raspberry Pi OS (Python ${targets[*]%%:*}), within $limit_mb MB"
