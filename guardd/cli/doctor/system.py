"""Doctor's checks of the system around guardd: its state directory, its log, its socket, the
clock and the service."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

from guardd.cli.doctor.result import Result, failed, passed
from guardd.config.settings import Config

MIN_FREE_MB = 50  # below this a busy day of recordings and log could fill the disk


def check_state_dir(config: Config) -> Result:
    name = "state directory"
    path = config.state_path
    fix = f"give guardd's user a writable {path} (the service's StateDirectory= does this) or change state_dir"
    if not path.exists():
        parent = next(p for p in path.parents if p.exists())
        if not os.access(parent, os.W_OK | os.X_OK):
            return failed(name, f"{path} does not exist yet and {parent} is not writable", fix)
        return passed(name, f"{path} does not exist yet; guardd creates it at first start "
                     f"({parent} is writable)")
    try:
        probe = path / f".doctor-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"guardd doctor")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink()
    except OSError as exc:
        return failed(name, f"{path} is not writable: {exc.strerror}", fix)
    free_mb = shutil.disk_usage(path).free / 1e6
    if free_mb < MIN_FREE_MB:
        return failed(name, f"{path}: only {free_mb:.0f} MB free",
                     "free some space or lower retention.max_total_mb")
    return passed(name, f"{path} writable, {free_mb:,.0f} MB free")


def check_log(config: Config) -> Result:
    from guardd.auditlog.verify import verify
    from guardd.pipeline import log_dir

    directory = Path(log_dir(config))
    if not directory.is_dir():
        return passed("audit log", f"no log yet in {directory} (guardd creates it at first start)")
    count, problems = verify(directory)
    if problems:
        return failed("audit log", f"{len(problems)} problem(s), first: {problems[0]}",
                     "run `guardd verify` to see every problem; keep the log as evidence")
    return passed("audit log", f"{count} records verify")


def check_socket(config: Config) -> Result:
    name = "control socket"
    path = Path(config.socket.path)
    if not path.exists():
        parent = path.parent
        if parent.is_dir() and os.access(parent, os.W_OK):
            return passed(name, f"{path} not there yet; {parent} is writable")
        return failed(name, f"{parent} does not exist or is not writable",
                     "under systemd RuntimeDirectory=guardd provides it; otherwise set socket.path")
    st = path.stat()
    mode = st.st_mode & 0o777
    if mode & 0o007:
        return failed(name, f"{path} is mode {mode:04o}: anyone may submit sends",
                     "restart guardd (it creates the socket 0660) and check nothing chmods it")
    if config.socket.group:
        import grp

        try:
            want = grp.getgrnam(config.socket.group).gr_gid
        except KeyError:
            return failed(name, f"socket.group {config.socket.group!r} does not exist",
                         f"sudo groupadd {config.socket.group}")
        if st.st_gid != want:
            return failed(name, f"{path} belongs to group {st.st_gid}, not {config.socket.group}",
                         "restart guardd")
    return passed(name, f"{path} mode {mode:04o}")


def check_clock() -> Result:
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.year < 2025:
        return failed("clock", f"the wall clock says {now:%Y-%m-%d}",
                     "a Pi has no real-time clock: enable time sync (timedatectl set-ntp true); "
                     "retention by age needs a sane clock")
    return passed("clock", f"{now:%Y-%m-%d %H:%M} UTC")


def check_service() -> Result:
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
        return failed("service", "systemd is not running here",
                     "on the Pi install the unit with scripts/install.sh")
    state = subprocess.run(["systemctl", "is-active", "guardd"], capture_output=True, text=True, timeout=10)
    status = state.stdout.strip() or state.stderr.strip()
    if status != "active":
        return failed("service", f"guardd.service is {status}",
                     "sudo systemctl enable --now guardd; then journalctl -u guardd")
    return passed("service", "guardd.service is active")


def check_satellite(config: Config) -> Result:
    """Satellite mode: whether wyoming.listen can be listened on (a bind, closed at once)."""
    import errno
    import socket

    name = "satellite mode"
    wyoming = config.wyoming
    if wyoming.address is None:
        return passed(name, "off (wyoming.listen is null)")
    host, port = wyoming.address
    uploads = ("kept utterances go to it after a press" if config.after_wake.upload_to == "wyoming"
               else "after_wake.upload_to is not wyoming, so it gets no audio")
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return passed(name, f"{wyoming.listen} is in use (by guardd itself if it runs: `guardd status` "
                                f"shows its peer); allows {', '.join(wyoming.allow)}; {uploads}")
        if exc.errno == errno.EADDRNOTAVAIL:
            return failed(name, f"{host} is not an address of this device",
                          "set wyoming.listen to this Pi's LAN address (`hostname -I`) or 0.0.0.0, with :10700")
        return failed(name, f"cannot listen on {wyoming.listen}: {exc.strerror}",
                      "use port 10700 (the unit allows only it: SocketBindAllow= in hardware.md for another)")
    finally:
        probe.close()
    return passed(name, f"{wyoming.listen} free; allows {', '.join(wyoming.allow)}; {uploads}")


def check_esphome(config: Config) -> Result:
    """The encrypted link: its extra installed, its key file readable (by whom), its address free."""
    import errno
    import socket

    from guardd.config.esphome import INSTALL, STORE, missing_extra

    name = "encrypted link"
    esphome = config.esphome
    if esphome.address is None:
        return passed(name, "off (esphome.listen is null)")
    missing = missing_extra()
    if missing:
        return failed(name, f"the esphome extra is not installed (no {', '.join(missing)})", INSTALL)
    key_file = _key_file(config)
    if key_file is not None:
        try:
            st = key_file.stat()
            key_file.read_bytes()
        except OSError as exc:
            return failed(name, f"cannot read the key file {key_file}: {exc.strerror}", STORE)
        try:
            import pwd

            owner = pwd.getpwuid(st.st_uid).pw_name
        except (ImportError, KeyError):
            owner = str(st.st_uid)
        where = f"key in {key_file} (mode {st.st_mode & 0o777:04o}, owner {owner}: the service runs as guardd)"
    else:
        where = "key from the environment"
    if not esphome.encryption_key:
        return failed(name, "esphome.encryption_key is not set", STORE)
    uploads = ("kept utterances go to it after a press" if config.after_wake.upload_to == "esphome"
               else "after_wake.upload_to is not esphome, so it gets no audio")
    host, port = esphome.address
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return passed(name, f"{esphome.listen} is in use (by guardd itself if it runs); {where}; {uploads}")
        return failed(name, f"cannot listen on {esphome.listen}: {exc.strerror}",
                      "set esphome.listen to this Pi's LAN address (`hostname -I`) or 0.0.0.0, with :6053")
    finally:
        probe.close()
    return passed(name, f"{esphome.listen} free; {where}; {uploads}")


def _key_file(config: Config) -> Path | None:
    """The file esphome.encryption_key names in the config file, if it names one."""
    import yaml

    try:
        raw = yaml.safe_load(Path(config.source).read_text())
        ref = raw["esphome"]["encryption_key"]["file"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return Path(ref) if isinstance(ref, str) else None
