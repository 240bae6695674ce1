#!/usr/bin/env bash
# Installs guardd as a hardened systemd service on Raspberry Pi OS (Bookworm or Trixie, 64-bit),
# from a clone of this repository:
#
#   sudo bash scripts/install.sh                      install or update; safe to run again
#   sudo bash scripts/install.sh --uninstall          remove the service, keep config, log, recordings
#   sudo bash scripts/install.sh --uninstall --purge  remove those too, and the guardd user
#
# What it does: the Debian packages guardd needs, a system user `guardd` (no login shell, groups
# audio and gpio), a venv in /opt/guardd/venv that also sees the system's python3-lgpio (the Pi 5's
# GPIO library), guardd from this clone, /etc/guardd/guardd.yaml (never overwriting yours), the
# audit log's sealing key (`guardd log init`, whose verification key it prints once, here), the
# systemd unit, then enable and start. Run with --help for the options tests use.
set -euo pipefail
umask 022

usage() {
    cat <<'EOF'
usage: sudo bash scripts/install.sh [--uninstall [--purge]] [options]

  --uninstall        stop and remove the service, /opt/guardd (the venv) and the unit; keep
                     /etc/guardd (your config) and /var/lib/guardd (the audit log and recordings)
  --purge            with --uninstall: also remove /etc/guardd, /var/lib/guardd and the guardd user
  --root DIR         install into DIR instead of / (every path below DIR; the user is added to
                     DIR/etc/passwd with useradd --prefix); implies --no-apt, and systemctl only
                     enables the unit inside DIR. For tests: a venv made there runs only from there.
  --no-apt           do not install Debian packages (install libportaudio2 python3-venv alsa-utils
                     espeak-ng, and python3-lgpio on a Pi, yourself)
  --no-systemctl     do not run systemctl (no daemon-reload, enable or start)
  --python PATH      the Python that makes the venv (default: /usr/bin/python3, 3.11 or newer)
  --pip-args "ARGS"  extra arguments for pip install, split on spaces
                     (e.g. "--no-deps --no-build-isolation" when there is no network)
  -h, --help         this text
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

changes=0
changed() { changes=$((changes + 1)); say "$*"; }

mode=install
purge=0
root=""
do_apt=1
do_systemctl=1
python=/usr/bin/python3
pip_args=()

while [ $# -gt 0 ]; do
    case "$1" in
        --uninstall) mode=uninstall ;;
        --purge) purge=1 ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift ;;
        --root=*) root=${1#--root=} ;;
        --no-apt) do_apt=0 ;;
        --no-systemctl) do_systemctl=0 ;;
        --python) [ $# -ge 2 ] || die "--python needs a path"; python=$2; shift ;;
        --python=*) python=${1#--python=} ;;
        --pip-args) [ $# -ge 2 ] || die "--pip-args needs a value"; read -r -a pip_args <<<"$2"; shift ;;
        --pip-args=*) read -r -a pip_args <<<"${1#--pip-args=}" ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done

[ "$purge" -eq 0 ] || [ "$mode" = uninstall ] || die "--purge goes with --uninstall"
[ "$(id -u)" -eq 0 ] || die "run me as root: sudo bash $0 ..."

# The clone this script lives in.
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ -n "$root" ]; then
    [ -d "$root" ] || die "--root $root: no such directory"
    root=$(cd "$root" && pwd)
    [ "$root" != / ] || root=""
fi
if [ -n "$root" ]; then
    do_apt=0
    for f in passwd group shadow gshadow login.defs; do
        [ -e "$root/etc/$f" ] || die "--root $root: $root/etc/$f is missing (useradd --prefix needs it; copy it from /etc)"
    done
fi

# Every path as the running system sees it, and where this run writes it.
OPT=/opt/guardd
VENV=$OPT/venv
ETC=/etc/guardd
CONF=$ETC/guardd.yaml
STATE=/var/lib/guardd
UNIT=/etc/systemd/system/guardd.service
MAN_PAGE=/usr/local/share/man/man1/guardd.1
COMPLETION=/usr/share/bash-completion/completions/guardd
R=$root
prefix=()
[ -z "$R" ] || prefix=(--prefix "$R")

passwd_file=$R/etc/passwd
group_file=$R/etc/group

user_exists() { grep -q '^guardd:' "$passwd_file"; }
group_exists() { grep -q "^$1:" "$group_file"; }
in_group() { # in_group GROUP: is guardd a supplementary member of GROUP
    awk -F: -v g="$1" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == "guardd") found = 1 }
                       END { exit !found }' "$group_file"
}
# Numeric ids from the target's own files: under --root the host does not know the guardd user.
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$passwd_file"; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$group_file"; }

# ensure_owner PATH MODE UID GID: fix mode and owner if they differ.
ensure_owner() {
    local now_mode now_uid now_gid
    read -r now_mode now_uid now_gid < <(stat -c '%a %u %g' "$1")
    if [ "$now_mode $now_uid $now_gid" != "${2#0} $3 $4" ]; then
        chmod "$2" "$1"
        chown "$3:$4" "$1"
        changed "set $1 to mode $2, owner $3:$4 (was mode $now_mode, owner $now_uid:$now_gid)"
    fi
}

# ensure_dir PATH MODE UID GID
ensure_dir() {
    if [ ! -d "$1" ]; then
        mkdir -p "$1"
        chmod "$2" "$1"
        chown "$3:$4" "$1"
        changed "created $1"
    else
        ensure_owner "$@"
    fi
}

# install_file FROM TO MODE UID GID: copy only when the content differs, so a second run leaves
# files (and their mtimes) alone. Sets wrote=1 when it wrote the file. (Functions here report
# through variables, not their status: bash ignores `set -e` inside a function whose status is
# tested, so a failure inside would go unnoticed.)
wrote=0
install_file() {
    wrote=0
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        ensure_owner "$2" "$3" "$4" "$5"
        return 0
    fi
    local verb=installed
    [ ! -e "$2" ] || verb=updated
    install -m "$3" -o "$4" -g "$5" "$1" "$2"
    wrote=1
    changed "$verb $2"
}

systemd_running() { [ -d /run/systemd/system ]; }

# --------------------------------------------------------------------------------------------
uninstall() {
    if [ "$do_systemctl" -eq 1 ] && [ -e "$R$UNIT" ]; then
        if [ -n "$R" ]; then
            systemctl --root="$R" --quiet disable guardd.service 2>/dev/null || true
        elif systemd_running; then
            if systemctl is-active --quiet guardd.service || systemctl is-enabled --quiet guardd.service; then
                systemctl disable --now --quiet guardd.service
                changed "stopped and disabled guardd.service"
            fi
        fi
    fi
    local unit_removed=0
    if [ -e "$R$UNIT" ]; then
        rm -f "$R$UNIT"
        changed "removed $R$UNIT"
        unit_removed=1
    fi
    if [ "$unit_removed" -eq 1 ] && [ "$do_systemctl" -eq 1 ] && [ -z "$R" ] && systemd_running; then
        systemctl daemon-reload
    fi
    if [ -e "$R$OPT" ]; then
        rm -rf "$R$OPT"
        changed "removed $R$OPT (the venv and the docs)"
    fi
    remove_reference
    if [ "$purge" -eq 1 ]; then
        for d in "$R$ETC" "$R$STATE"; do
            if [ -e "$d" ]; then
                rm -rf "$d"
                changed "removed $d"
            fi
        done
        if user_exists; then
            userdel "${prefix[@]}" guardd
            changed "removed the user guardd"
        fi
    else
        local kept=()
        [ ! -e "$R$ETC" ] || kept+=("$R$ETC (your config)")
        [ ! -e "$R$STATE" ] || kept+=("$R$STATE (the audit log and recordings)")
        user_exists && kept+=("the user guardd")
        if [ "${#kept[@]}" -gt 0 ]; then
            say "kept: $(printf '%s; ' "${kept[@]}" | sed 's/; $//')"
            say "to remove those too: sudo bash $0 --uninstall --purge"
        fi
    fi
    if [ "$changes" -eq 0 ]; then
        say "nothing to remove: guardd is not installed${R:+ in $R}"
    else
        say "guardd is uninstalled${R:+ from $R}"
    fi
}

# --------------------------------------------------------------------------------------------
check_clone() {
    grep -qs '^name = "guardd"' "$src/pyproject.toml" ||
        die "$src is not a guardd clone (no pyproject.toml naming guardd); run the script from the clone"
    local f
    for f in config/guardd.yaml systemd/guardd.service README.md guardd/__init__.py; do
        [ -f "$src/$f" ] || die "$src/$f is missing; is the clone complete?"
    done
}

check_python() {
    [ -x "$python" ] || command -v "$python" >/dev/null ||
        die "no Python at $python (install python3, or name one with --python)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$python is Python $("$python" -c 'import platform; print(platform.python_version())'); guardd needs 3.11 or newer (Bookworm has 3.11, Trixie 3.13)"
    [ "$("$python" -c 'import struct; print(struct.calcsize("P") * 8)')" = 64 ] ||
        die "$python is a 32-bit Python: onnxruntime has no wheels for 32-bit ARM; install the 64-bit Raspberry Pi OS"
    "$python" -c 'import venv, ensurepip' 2>/dev/null ||
        die "$python cannot make a venv: install python3-venv (sudo apt install python3-venv)"
}

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
deb_available() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

install_packages() {
    command -v apt-get >/dev/null ||
        die "apt-get not found: this installer is for Raspberry Pi OS or Debian; use --no-apt and install libportaudio2, python3-venv, alsa-utils and espeak-ng yourself"
    # libportaudio2: sounddevice's PortAudio. python3-venv: the venv. alsa-utils: arecord and
    # alsamixer, to find and level the microphone. espeak-ng: the words of each request's
    # announcement. python3-lgpio: gpiozero's backend on the Pi 5 (it exists in Raspberry Pi
    # OS's own repository, not in plain Debian).
    local wanted=(libportaudio2 python3-venv alsa-utils espeak-ng) missing=() p
    for p in "${wanted[@]}"; do deb_installed "$p" || missing+=("$p"); done
    local want_lgpio=0
    if ! deb_installed python3-lgpio; then
        want_lgpio=1
    fi
    if [ "${#missing[@]}" -eq 0 ] && { [ "$want_lgpio" -eq 0 ] || ! deb_available python3-lgpio; }; then
        return
    fi
    say "apt: updating the package lists"
    apt-get update -qq || die "apt-get update failed (is the network up?)"
    if [ "$want_lgpio" -eq 1 ]; then
        if deb_available python3-lgpio; then
            missing+=(python3-lgpio)
        else
            say "apt: python3-lgpio is not available here (not Raspberry Pi OS?): skipped; gpiozero uses another backend"
        fi
    fi
    [ "${#missing[@]}" -gt 0 ] || return 0
    say "apt: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
    changed "installed the Debian packages ${missing[*]}"
}

ensure_user() {
    local g
    # gpio exists on Raspberry Pi OS (udev gives it /dev/gpiochip*); elsewhere make it so the
    # unit's SupplementaryGroups= resolves.
    for g in audio gpio; do
        if ! group_exists "$g"; then
            groupadd "${prefix[@]}" --system "$g"
            changed "created the group $g"
        fi
    done
    if ! user_exists; then
        useradd "${prefix[@]}" --system --user-group --no-create-home --home-dir "$STATE" \
            --shell /usr/sbin/nologin --comment "guardd privacy guard" --groups audio,gpio guardd
        changed "created the system user guardd (no login shell, home $STATE, groups audio and gpio)"
        return
    fi
    local add=()
    for g in audio gpio; do in_group "$g" || add+=("$g"); done
    if [ "${#add[@]}" -gt 0 ]; then
        usermod "${prefix[@]}" -a -G "$(IFS=,; echo "${add[*]}")" guardd
        changed "added the user guardd to ${add[*]}"
    fi
}

# A digest of what pip would install from the clone; kept in the venv so a re-run skips pip when
# nothing changed (and a rebuilt venv always gets a fresh install).
source_digest() {
    (cd "$src" && { echo pyproject.toml; echo README.md;
                    find guardd -type f ! -path '*/__pycache__/*' ! -name '*.pyc'; } |
        LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
}

venv_changed=0
ensure_venv() {
    local venv=$R$VENV stamp=$R$VENV/.guardd-source
    if [ -d "$venv" ]; then
        if ! "$venv/bin/python" -c '' 2>/dev/null ||
           ! grep -q '^include-system-site-packages = true' "$venv/pyvenv.cfg" 2>/dev/null ||
           [ "$("$venv/bin/python" -c 'import sys; print(sys.version_info[:2])')" != \
             "$("$python" -c 'import sys; print(sys.version_info[:2])')" ]; then
            say "the venv $venv is broken or from another Python (an OS upgrade?): making it again"
            rm -rf "$venv"
        fi
    fi
    if [ ! -d "$venv" ]; then
        "$python" -m venv --system-site-packages "$venv" ||
            die "could not make the venv $venv with $python (is python3-venv installed?)"
        changed "created the venv $venv (it also sees the system's packages, such as python3-lgpio)"
    fi
    local digest
    digest=$(source_digest)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && "$venv/bin/guardd" --version >/dev/null 2>&1; then
        return 0
    fi
    # Build from a copy: pip and setuptools write build/ and *.egg-info into the source tree, and
    # the clone belongs to the person who made it, not to root.
    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand $work now: it is local to this function
    trap "rm -rf '$work'" EXIT
    mkdir "$work/src"
    tar -C "$src" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md guardd |
        tar -C "$work/src" -xf -
    # The wake word models come in a wheel installed without its requirements (pyproject.toml,
    # [tool.guardd] models, says why): the same command guardd names when they are missing.
    local models
    models=$("$venv/bin/python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["tool"]["guardd"]["models"])' \
        "$src/pyproject.toml") || die "$src/pyproject.toml names no wake word models ([tool.guardd] models)"
    say "pip: installing guardd, its dependencies and the wake word models into $venv (on a Pi this downloads about 45 MB and takes a few minutes)"
    local pip=("$venv/bin/python" -m pip install --disable-pip-version-check --no-input --root-user-action=ignore "${pip_args[@]}")
    if ! { "${pip[@]}" "$work/src" && "${pip[@]}" --no-deps --force-reinstall "$models"; } >"$work/pip.log" 2>&1; then
        cat "$work/pip.log" >&2
        die "pip install failed (its output is above)"
    fi
    local version
    version=$("$venv/bin/guardd" --version 2>&1) ||
        die "guardd was installed but does not start: $version"
    echo "$digest" >"$stamp"
    rm -rf "$work"
    trap - EXIT
    venv_changed=1
    changed "installed $version into $venv ($(du -sm "$venv" | cut -f1) MB)"
}

# The config is the owner's. Like dpkg's conffiles: install it when absent; when the owner's
# differs from what we shipped, keep it, and if what we ship has changed since, put the new one
# beside it as guardd.yaml.new. The copy of what was shipped last lives in /opt/guardd/shipped.
ensure_config() {
    local shipped=$src/config/guardd.yaml conf=$R$CONF record=$R$OPT/shipped/guardd.yaml
    local guardd_gid=$1
    if [ ! -e "$conf" ]; then
        install -m 0640 -o 0 -g "$guardd_gid" "$shipped" "$conf"
        changed "installed $conf (edit it, then: sudo systemctl reload guardd)"
    elif cmp -s "$shipped" "$conf"; then
        ensure_owner "$conf" 0640 0 "$guardd_gid"
    else
        ensure_owner "$conf" 0640 0 "$guardd_gid"
        if [ -f "$record" ] && cmp -s "$record" "$shipped"; then
            : # the owner edited it and we ship the same as last time: nothing to say
        elif [ -f "$conf.new" ] && cmp -s "$shipped" "$conf.new"; then
            :
        else
            install -m 0640 -o 0 -g "$guardd_gid" "$shipped" "$conf.new"
            changed "kept your $conf; the shipped config differs from it, so it is in $conf.new: compare them (diff -u $CONF $CONF.new), merge what you want, then delete $CONF.new"
        fi
    fi
    if [ -f "$conf.new" ]; then
        say "note: $conf.new waits for you to merge it into $conf (then delete it)"
    fi
    mkdir -p "$R$OPT/shipped"
    install_file "$shipped" "$record" 0644 0 0 >/dev/null
}

# The audit log's sealing key, made before the first start so that its verification key is shown
# here, once, on the terminal: a daemon that finds no log makes the key itself and prints it to
# stderr, which under systemd is the journal, on this device. Only for a state directory with no
# log yet: an existing log keeps its key (a new one would be a rekey, the owner's decision).
verification_key=""
ensure_log() {
    local state=$R$STATE uid=$1 gid=$2 errors key
    if [ -e "$state/log" ] || [ -e "$state/keys" ]; then
        return 0
    fi
    errors=$(mktemp)
    if ! key=$("$R$VENV/bin/guardd" log init --config "$R$CONF" --dir "$state/log" 2>"$errors"); then
        cat "$errors" >&2
        rm -f "$errors"
        die "guardd log init failed (its output is above)"
    fi
    rm -f "$errors"
    case "$key" in vk1-*) ;; *) die "guardd log init printed no verification key" ;; esac
    # Made by root (under --root the user guardd exists only in the target's passwd): hand the
    # log and its key state to guardd, which alone may write them.
    chown -R "$uid:$gid" "$state"
    verification_key=$key
    changed "made the audit log and its sealing key in $STATE (guardd log init)"
}

# -- man page and bash completion ---------------------------------------------------------------
# Made from the installed guardd's own argument parser (python -m guardd.cli.reference), so they
# describe the commands this venv has: `man guardd`, and Tab after `guardd`.
install_reference() {
    local work what
    work=$(mktemp -d)
    for what in man bash; do
        if ! "$R$VENV/bin/python" -m guardd.cli.reference "$what" >"$work/$what"; then
            rm -rf "$work"
            die "could not make the $what reference with $VENV/bin/python -m guardd.cli.reference"
        fi
    done
    mkdir -p "$(dirname "$R$MAN_PAGE")" "$(dirname "$R$COMPLETION")"
    install_file "$work/man" "$R$MAN_PAGE" 0644 0 0
    install_file "$work/bash" "$R$COMPLETION" 0644 0 0
    rm -rf "$work"
}

remove_reference() {
    local f
    for f in "$R$MAN_PAGE" "$R$COMPLETION"; do
        if [ -e "$f" ]; then
            rm -f "$f"
            changed "removed $f"
        fi
    done
}
# ------------------------------------------------------------------------------------------------

# docs/ beside README.md, as in the clone (README.md links into it); a page no longer shipped is
# removed.
ensure_docs() {
    local docs=$R$OPT/docs f name
    [ -d "$src/docs" ] || return 0
    ensure_dir "$docs" 0755 0 0
    for f in "$src"/docs/*.md; do
        [ -f "$f" ] || continue
        install_file "$f" "$docs/$(basename "$f")" 0644 0 0
    done
    for f in "$docs"/*; do
        [ -e "$f" ] || continue
        name=$(basename "$f")
        if [ ! -f "$src/docs/$name" ]; then
            rm -rf "$f"
            changed "removed $f (no longer shipped)"
        fi
    done
}

next_steps() {
    local key_step
    if [ -n "$verification_key" ]; then
        key_step="  1. Write down the log's verification key now. It is shown only this once, here, and kept
     nowhere on this device (not in the journal either):
       $verification_key
     Keep it off this device; 'sudo $VENV/bin/guardd verify --key KEY' checks every seal of the log."
    else
        key_step="  1. The log's verification key was shown once, when the log was made; it is kept nowhere on
     this device. 'sudo $VENV/bin/guardd verify --key KEY' checks every seal of the log with it."
    fi
    cat <<EOF

Next steps (guardd runs as the user guardd; its config is readable by root and guardd only):
$key_step
  2. Find your microphone and put its name or index in audio.device in $CONF:
       sudo $VENV/bin/guardd devices
       sudoedit $CONF
  3. Check the config after every edit, then reload it (a bad config is refused, the running one kept):
       sudo $VENV/bin/guardd check-config $CONF && sudo systemctl reload guardd
  4. Test the LED and the button (hardware.md has the wiring); stop the service first, it holds the pins:
       sudo systemctl stop guardd
       sudo $VENV/bin/guardd doctor --hardware
       sudo systemctl start guardd
  5. Watch it: journalctl -u guardd -f    and    sudo $VENV/bin/guardd status
Docs: $OPT/README.md, $OPT/docs/ and $OPT/hardware.md. Uninstall: sudo bash $src/scripts/install.sh --uninstall
EOF
}

install_guardd() {
    check_clone
    [ "$do_apt" -eq 0 ] || install_packages
    check_python
    ensure_user
    local uid gid
    uid=$(uid_of guardd)
    gid=$(gid_of guardd)
    if [ -z "$uid" ] || [ -z "$gid" ]; then
        die "the user guardd has no entry in $passwd_file or $group_file"
    fi

    ensure_dir "$R$OPT" 0755 0 0
    ensure_dir "$R$ETC" 0750 0 "$gid"
    ensure_dir "$R$STATE" 0700 "$uid" "$gid"
    mkdir -p "$R/etc/systemd/system"

    ensure_venv
    install_reference
    install_file "$src/README.md" "$R$OPT/README.md" 0644 0 0
    if [ -f "$src/hardware.md" ]; then
        install_file "$src/hardware.md" "$R$OPT/hardware.md" 0644 0 0
    fi
    ensure_docs
    ensure_config "$gid"
    ensure_log "$uid" "$gid"
    install_file "$src/systemd/guardd.service" "$R$UNIT" 0644 0 0
    local unit_changed=$wrote

    if [ "$do_systemctl" -eq 0 ]; then
        say "systemctl skipped (--no-systemctl); to start guardd: sudo systemctl daemon-reload && sudo systemctl enable --now guardd"
    elif [ -n "$R" ]; then
        if ! systemctl --root="$R" --quiet is-enabled guardd.service 2>/dev/null; then
            systemctl --root="$R" --quiet enable guardd.service ||
                die "systemctl --root=$R enable guardd.service failed"
            changed "enabled guardd.service in $R"
        fi
    else
        systemd_running || die "systemd is not running here (a container?); rerun with --no-systemctl"
        if [ "$unit_changed" -eq 1 ]; then
            systemctl daemon-reload
            say "systemd: reloaded the unit files"
        fi
        if ! systemctl --quiet is-enabled guardd.service 2>/dev/null; then
            systemctl --quiet enable guardd.service
            changed "enabled guardd.service (it starts at boot)"
        fi
        if systemctl --quiet is-active guardd.service; then
            if [ "$venv_changed" -eq 1 ] || [ "$unit_changed" -eq 1 ]; then
                systemctl restart guardd.service ||
                    die "guardd.service did not restart; see: journalctl -u guardd -e, and: sudo $VENV/bin/guardd doctor"
                changed "restarted guardd.service with the new version"
            fi
        else
            systemctl start guardd.service ||
                die "guardd.service did not start; see: journalctl -u guardd -e, and: sudo $VENV/bin/guardd doctor"
            changed "started guardd.service"
        fi
    fi

    if [ "$changes" -eq 0 ]; then
        say "nothing changed: guardd is already installed and up to date${R:+ in $R}"
    else
        say "done: $changes change(s)${R:+ in $R}"
    fi
    next_steps
}

if [ "$mode" = uninstall ]; then
    uninstall
else
    install_guardd
fi
