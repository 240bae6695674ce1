"""`guardd run` over a long stretch of audio, set up as a Pi runs it, for its peak memory:
ALSA's file plugin is the microphone, read from a FIFO fed at a set pace (the file plugin does
not pace itself: from a plain file it reads as fast as it can and the core drops what it cannot
keep up with), satellite mode is on with a Home Assistant peer connected that pings
(benchmark.satellite's), each wake's upload is announced through an ALSA file PCM, and the pins
are gpiozero's mock ones. Nobody presses, so each request asks until its timeout. The venv's
shared libraries are first dropped from the page cache, as a device's boot finds them
(uncache_libraries says why).

Reported: the peak RSS (the kernel's high-water mark, read just before SIGTERM, start-up
included), the RSS at the end split into anonymous pages and pages mapped from files, the
process's CPU, its wakes, and the audio blocks it dropped (0 unless the pace was too fast).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmark.processes import stop
from guardd.audioformat import SAMPLE_RATE

F_SETPIPE_SZ = 1031
STEP_S = 0.05  # the feeder writes speed * STEP_S seconds of audio every STEP_S
DRAIN_S = 5.0  # wall seconds of fed silence after the audio, for the queue to empty
ASOUNDRC = """\
pcm.!default {{ type asym capture.pcm "bench_in" playback.pcm "bench_out" }}
pcm.bench_in {{ type plug
    slave.pcm {{ type file slave.pcm "null" file "/dev/null" infile "{fifo}" format "raw" }} }}
pcm.bench_out {{ type plug slave.pcm {{ type file slave.pcm "null" file "/dev/null" format "raw" }} }}
"""


class Feeder(threading.Thread):
    """Writes the audio into the FIFO at `speed` times real time, then silence until stopped.
    PortAudio opens and closes the device while it starts, so a closed reader is waited for
    again (what it had not read yet is counted as lost)."""

    def __init__(self, fifo: Path, pcm: bytes, speed: float, alive: Callable[[], bool]) -> None:
        super().__init__(daemon=True)
        self.fifo, self.pcm, self.alive = fifo, pcm, alive
        self.step = int(speed * STEP_S * SAMPLE_RATE) * 2
        self.fed = 0  # bytes of the audio written
        self.done = threading.Event()  # all of the audio is written
        self.stop = threading.Event()
        self.error: str | None = None

    def _open(self) -> int | None:
        while not self.stop.is_set() and self.alive():
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.02)
                continue
            os.set_blocking(fd, True)
            try:
                fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass  # the default 64 KB pipe only makes the pace coarser
            return fd
        return None

    def run(self) -> None:
        silence = bytes(self.step)
        fd = None
        try:
            next_at = time.monotonic()
            while not self.stop.is_set():
                if fd is None and (fd := self._open()) is None:
                    return
                chunk = self.pcm[self.fed : self.fed + self.step] or silence
                try:
                    os.write(fd, chunk)
                except BrokenPipeError:
                    os.close(fd)
                    fd = None
                    continue
                if self.fed < len(self.pcm):
                    self.fed += len(chunk)
                    if self.fed >= len(self.pcm):
                        self.done.set()
                next_at += STEP_S
                time.sleep(max(0.0, next_at - time.monotonic()))
        except OSError as exc:
            self.error = str(exc)
        finally:
            self.done.set()
            if fd is not None:
                os.close(fd)


def uncache_libraries(folder: Path | None = None) -> int:
    """Drop the shared libraries under `folder` (default: this venv's packages) from the page
    cache, so that the daemon reads them in itself, page fault by page fault, as after a boot;
    the number of files. Pages some process has mapped stay.

    Why: the peak counts the library pages mapped into the process, and a recent kernel (6.18
    here; ext4 caches files in large folios since 6.16) maps a cached large folio whole when one
    of its pages is touched. After setup.sh's pip install, onnxruntime's code sat in the page
    cache in folios of about 1 MB, and the daemon counted 15.6 MB of it; read in by the daemon
    itself (small folios), 7.3 MB. The peak was 13 to 17 MB higher for nothing the daemon does,
    and depended on who read the files first (docs/performance.md, "Memory of the running
    daemon"). A Pi's kernel (6.12) predates ext4's large folios, so there this should change
    nothing; that is not measured yet."""
    count = 0
    for path in Path(folder or sysconfig.get_paths()["platlib"]).rglob("*.so*"):
        if not path.is_file():
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            # Pages not yet written back (pip's install a minute ago) cannot be dropped: write
            # them first, or the daemon counts them as pip left them.
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            count += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return count


def _status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS, RssAnon and RssFile of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0])
    return fields


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def run(tmp: Path, audio: np.ndarray, minutes: float, speed: float,
        say: Callable[[str], None]) -> dict[str, Any]:
    """`guardd run` over `minutes` of `audio` (repeated as needed), fed at `speed` times real time."""
    from guardd.device.mute import write_muted

    samples = int(minutes * 60 * SAMPLE_RATE)
    pcm = np.resize(audio.astype("<i2"), samples).tobytes()
    home = tmp / "home"
    home.mkdir(parents=True)
    fifo = tmp / "mic.fifo"
    os.mkfifo(fifo)
    (home / ".asoundrc").write_text(ASOUNDRC.format(fifo=fifo))
    port = _free_port()
    config = tmp / "guardd.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp / "state"), "socket": {"path": str(tmp / "guardd.sock")},
        "wyoming": {"listen": f"127.0.0.1:{port}", "allow": ["127.0.0.1"]},
        "after_wake": {"upload_to": "wyoming"},
    }))
    write_muted(tmp / "state", False)  # as after the owner's long press
    env = dict(os.environ, HOME=str(home), GPIOZERO_PIN_FACTORY="mock")
    env.pop("NOTIFY_SOCKET", None)
    say(f"`guardd run` over {minutes:g} min of audio at {speed:g}x, satellite mode on, its libraries "
        f"out of the page cache ({uncache_libraries()} files)")
    stderr = open(tmp / "daemon.stderr", "w")
    proc = subprocess.Popen([sys.executable, "-m", "guardd", "run", "--config", str(config)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    feeder = Feeder(fifo, pcm, speed, lambda: proc.poll() is None)
    feeder.start()
    peer = None
    try:
        said = tmp / "daemon.stderr"
        deadline = time.monotonic() + 60
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"guardd run did not listen on {port}: {said.read_text()[-800:]}")
            time.sleep(0.05)
        peer = subprocess.Popen([sys.executable, "-m", "benchmark.satellite", "peer", str(port),
                                 str(tmp / "peer.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        budget = 120 + minutes * 60 / speed * 3  # wall seconds before it counts as stuck
        if not feeder.done.wait(budget) or feeder.error or proc.poll() is not None:
            why = feeder.error or ("it exited" if proc.poll() is not None else "stuck")
            raise RuntimeError(f"guardd run stopped taking audio ({why}): {said.read_text()[-800:]}")
        time.sleep(DRAIN_S)
        if proc.poll() is not None:
            raise RuntimeError(f"guardd run exited {proc.returncode}: {said.read_text()[-800:]}")
        status, cpu = _status(proc.pid), _cpu_s(proc.pid)
    finally:
        feeder.stop.set()
        stop(proc, 30.0)
        if peer is not None:
            peer.kill()
            peer.wait()
        stderr.close()
    said = (tmp / "daemon.stderr").read_text()
    dropped = 0
    for line in said.splitlines():
        if "blocks dropped" in line:  # "audio: N overflows, M blocks dropped", at stop
            dropped = int(line.rsplit(" blocks dropped", 1)[0].rsplit(" ", 1)[1])
    return {
        "daemon_audio_s": round(feeder.fed / 2 / SAMPLE_RATE, 1),
        "daemon_peak_rss_mb": round(status["VmHWM"] / 1024, 1),
        "daemon_end_rss_mb": round(status["VmRSS"] / 1024, 1),
        "daemon_end_anon_mb": round(status["RssAnon"] / 1024, 1),
        "daemon_end_file_mb": round(status["RssFile"] / 1024, 1),
        "daemon_cpu_s": round(cpu, 2),
        "daemon_wakes": said.count("wake word "),
        "daemon_dropped_blocks": dropped,
    }
