"""The owner's settings: frozen dataclasses with units in their names and the defaults a fresh
install runs with. config/load.py reads them from YAML; config/checks.py holds each key's limits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_PATH = Path("/etc/guardd/guardd.yaml")
# The wake word models that openwakeword 0.4.0 ships inside its wheel (listen/features.py finds them).
BUILTIN_MODELS = ("alexa", "hey_jarvis", "hey_mycroft")


class UnchosenStateDir(str):
    """The state directory when neither the config (state_dir) nor systemd (StateDirectory=)
    chose one. It is the path the daemon uses, marked so that `replay` can tell and work in a
    scratch directory instead of the owner's real log and sealing key."""


def default_state_dir() -> str:
    """systemd's StateDirectory= when running as a service, else a per-user directory."""
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    if os.geteuid() == 0:
        return UnchosenStateDir("/var/lib/guardd")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return UnchosenStateDir(Path(base) / "guardd")


@dataclass(frozen=True)
class WakeConfig:
    models: tuple[str, ...] = ("alexa", "hey_jarvis")  # built-in names or paths to .onnx files
    threshold: float = 0.7  # score 0..1 a frame must reach (docs/ears.md says why 0.7)
    # A model's own threshold, over `threshold` for the models it names (by name, or an .onnx
    # file's name without .onnx).
    thresholds: tuple[tuple[str, float], ...] = ()
    # Models whose wakes the owner's verifier confirms (made by `guardd tune --write`, kept in
    # state_dir/verifiers/MODEL.npz).
    verify: tuple[str, ...] = ()
    # Built-in models with a second look guardd ships (hey_jarvis; alexa has none) also wake on
    # one frame that it accepts, from its own threshold (0.2) up (listen/verifier.py; docs/ears.md).
    shipped_verifiers: bool = True
    trigger_frames: int = 2  # consecutive 80 ms frames at or above the threshold
    refractory_s: float = 2.0  # seconds after a wake during which no model can fire again
    gate_silence: bool = True  # skip the models while only room noise could reach a score

    def threshold_of(self, label: str) -> float:
        return self.per_model.get(label, self.threshold)

    @property
    def per_model(self) -> dict[str, float]:
        """The models wake.thresholds gives a threshold of their own."""
        return dict(self.thresholds)

    @property
    def builtin(self) -> tuple[str, ...]:
        return tuple(m for m in self.models if not m.endswith(".onnx"))

    @property
    def labels(self) -> tuple[str, ...]:
        """The models by the name their scores carry: built-in names, .onnx files' stems."""
        return tuple(Path(m).stem if m.endswith(".onnx") else m for m in self.models)


@dataclass(frozen=True)
class UtteranceConfig:
    pre_roll_s: float = 0.2  # seconds kept before the detected start of speech
    trailing_silence_s: float = 0.8  # seconds of silence that end the utterance
    max_length_s: float = 15.0  # seconds; an utterance is cut here
    no_speech_timeout_s: float = 5.0  # seconds after a wake with no speech: nothing is kept
    vad_aggressiveness: int = 2  # webrtcvad mode 0 (keeps most) .. 3 (filters most non-speech)
    vad_frame_ms: int = 30  # webrtcvad sub-frame: 10, 20 or 30 milliseconds


@dataclass(frozen=True)
class RetentionConfig:
    max_age_h: float = 24.0  # hours a recording is kept, by the wall clock
    max_total_mb: float = 200.0  # megabytes of recordings; the oldest go first


@dataclass(frozen=True)
class LogConfig:
    segment_max_bytes: int = 1_000_000  # a log segment is closed once it reaches this size
    max_segments: int = 100  # segments kept; older ones are deleted after a `retention` record
    max_age_days: float = 365.0  # days a closed segment is kept after its last record


@dataclass(frozen=True)
class AudioConfig:
    device: str | int | None = None  # input device name (substring) or index; None: the default
    queue_s: float = 30.0  # seconds of audio that may wait for the core loop before frames drop
    output_device: str | int | None = None  # the speaker, by name (substring) or index; None: the default


@dataclass(frozen=True)
class AnnounceConfig:
    output: str = "device"  # "device": play on audio.output_device; "none": play nothing
    volume: float = 0.7  # 0..1, of full scale
    read_text: bool = True  # a message's text is read out (its first 200 characters)
    upload: str = "describe"  # "describe": say what an upload is; "playback": play its audio first


@dataclass(frozen=True)
class LedConfig:
    pin: int = 17  # BCM number
    active_high: bool = True  # True: the pin drives the LED's anode through a resistor


@dataclass(frozen=True)
class ButtonConfig:
    pin: int = 27  # BCM number
    pull_up: bool = True  # True: the button connects the pin to ground, internal pull-up on
    mute_press_s: float = 3.0  # held this long with no request armed: mute, or unmute


@dataclass(frozen=True)
class DestinationConfig:
    """Where approved bytes may go. Only the owner's config names addresses; clients name these."""

    url: str = ""  # https://..., or http:// to a loopback address only
    method: str = "POST"  # POST or PUT
    headers: tuple[tuple[str, str], ...] = ()  # resolved values; secrets come from env or a file
    timeout_s: float = 10.0  # seconds for the whole send
    max_bytes: int = 10_000_000  # largest payload accepted for this destination
    label: str = ""  # the name the speaker says; empty: the name, with - and _ read as spaces
    name: str = ""  # the key under destinations:, filled in by the loader

    @property
    def spoken_name(self) -> str:
        return self.label or self.name.replace("_", " ").replace("-", " ")


@dataclass(frozen=True)
class AfterWakeConfig:
    # a destination name: ask to upload each kept utterance there; `wyoming` (`esphome`): to Home
    # Assistant over the satellite (encrypted) link (its timeout, 20 s, waits for it to reconnect)
    upload_to: str | None = None


def listen_address(listen: str | None) -> tuple[str, int] | None:
    """(host, port) of a checked "HOST:PORT" ("[v6]:PORT"), or None for null."""
    if listen is None:
        return None
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


WYOMING = "wyoming"  # the destination that is Home Assistant, reached over the satellite link
WYOMING_PORT = 10700  # Home Assistant's convention for a Wyoming satellite
WYOMING_MAX_BYTES = 120 * 32000  # two minutes of 16 kHz 16-bit audio, more than utterance.max_length_s
# An approved upload to Home Assistant may have to wait for the link: when the satellite
# connection drops, Home Assistant reconnects after 3 s, and 10 s more when that connect fails
# (assist_satellite.py _RESTART_SECONDS, _RECONNECT_SECONDS); a restart of Home Assistant takes
# about 8 s. 20 s covers the longest of those and the upload itself (a 15 s utterance is 480 KB).
WYOMING_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class WyomingConfig:
    """Satellite mode: Home Assistant's Wyoming integration connects here (guardd/wyoming/)."""

    # "HOST:PORT" Home Assistant connects to: an address of this device (check-config warns of
    # one that is not) or 0.0.0.0, port 10700 by convention; None: off (docs/home-assistant.md)
    listen: str | None = None
    allow: tuple[str, ...] = ()  # the Home Assistant host's addresses, every other peer refused; required when listening
    name: str = "guardd"  # the satellite's name in Home Assistant (its entities are named after it)
    advertise: bool = False  # announce _wyoming._tcp on the LAN (zeroconf): itself a disclosure

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) of `listen`, or None when satellite mode is off."""
        return listen_address(self.listen)


ESPHOME = "esphome"  # the destination that is Home Assistant, reached over the encrypted ESPHome link
ESPHOME_PORT = 6053  # Home Assistant's ESPHome default


@dataclass(frozen=True)
class EsphomeConfig:
    """The encrypted link: Home Assistant's ESPHome integration connects here (guardd/esphome/)."""

    listen: str | None = None  # "HOST:PORT" to listen on (the LAN address, port 6053); None: off
    name: str = "guardd"  # the node name Home Assistant shows: lowercase letters, digits, hyphens
    # the 32-byte pre-shared key (read from {file: PATH} or {env: NAME}, never written inline)
    encryption_key: bytes = field(default=b"", repr=False)
    allow: tuple[str, ...] = ()  # Home Assistant's addresses, on top of the key; empty: any
    advertise: bool = False  # announce _esphomelib._tcp on the LAN (zeroconf): itself a disclosure

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) of `listen`, or None when the link is off."""
        return listen_address(self.listen)


@dataclass(frozen=True)
class ConfirmConfig:
    timeout_s: float = 30.0  # seconds the LED asks before the request is denied
    long_press_s: float = 2.0  # a press held this long denies instead of approving
    stuck_s: float = 10.0  # a button held down since before arming for this long: denied, fault
    debounce_s: float = 0.03  # seconds the button line must be stable before a change counts
    queue: int = 4  # requests that may wait behind the armed one; more are refused as busy


def default_socket_path() -> str:
    """systemd's RuntimeDirectory= when running as a service, else /run or the user's runtime dir."""
    if os.environ.get("RUNTIME_DIRECTORY"):
        return str(Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0]) / "guardd.sock")
    if os.geteuid() == 0:
        return "/run/guardd/guardd.sock"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/guardd-{os.geteuid()}"
    return str(Path(base) / "guardd.sock")


@dataclass(frozen=True)
class SocketConfig:
    path: str = field(default_factory=default_socket_path)  # the control socket
    group: str | None = None  # group allowed to connect (mode 0660); None: the daemon's own group
    max_frame_bytes: int = 16_000_000  # longest request line (base64 payloads are 4/3 their size)
    read_timeout_s: float = 10.0  # seconds a client has to send a whole request line


@dataclass(frozen=True)
class Config:
    state_dir: str = field(default_factory=default_state_dir)  # recordings, log and keys
    wake: WakeConfig = WakeConfig()
    utterance: UtteranceConfig = UtteranceConfig()
    retention: RetentionConfig = RetentionConfig()
    log: LogConfig = LogConfig()
    audio: AudioConfig = AudioConfig()
    announce: AnnounceConfig = AnnounceConfig()
    led: LedConfig = LedConfig()
    button: ButtonConfig = ButtonConfig()
    destinations: tuple[DestinationConfig, ...] = ()
    after_wake: AfterWakeConfig = AfterWakeConfig()
    wyoming: WyomingConfig = WyomingConfig()
    esphome: EsphomeConfig = EsphomeConfig()
    confirm: ConfirmConfig = ConfirmConfig()
    socket: SocketConfig = SocketConfig()
    source: str = "<defaults>"  # where this config came from, for messages
    # what is allowed but unwise (a secret written inline), for check-config and the start-up log
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def destination(self, name: str) -> DestinationConfig | None:
        """A configured destination by name; `wyoming` (`esphome`) is Home Assistant's end of the
        satellite (encrypted) link while that link is on (it takes only audio: 16 kHz, 16-bit,
        mono). Both wait for Home Assistant to reconnect as long (WYOMING_TIMEOUT_S)."""
        if name == WYOMING and self.wyoming.listen is not None:
            return DestinationConfig(url=f"wyoming://{self.wyoming.listen}", label="Home Assistant",
                                     timeout_s=WYOMING_TIMEOUT_S, max_bytes=WYOMING_MAX_BYTES, name=WYOMING)
        if name == ESPHOME and self.esphome.listen is not None:
            return DestinationConfig(url=f"esphome://{self.esphome.listen}", label="Home Assistant",
                                     timeout_s=WYOMING_TIMEOUT_S, max_bytes=WYOMING_MAX_BYTES, name=ESPHOME)
        return next((d for d in self.destinations if d.name == name), None)
