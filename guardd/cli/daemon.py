"""`guardd run`: the microphone, the panel and the core loop, until SIGTERM or SIGINT.

Threads: PortAudio's callback enqueues audio blocks, gpiozero's threads (or, with --simulate, a
stdin reader) enqueue button edges, the control socket's thread client calls, the sender, the
speaker and Home Assistant's link their news (all through the inbox, inbox.py, which never makes
the core wait, nor any thread the core waits for), signal handlers set a flag. Only the main
thread touches the core, so its state needs no locks.
"""

from __future__ import annotations

import functools
import logging
import signal
import time
from pathlib import Path
from typing import Any

from guardd.cli.clients import Clients
from guardd.cli.inbox import Inbox
from guardd.cli.keeper import POLL_S, MicrophoneKeeper, OpenMicrophone
from guardd.config import load as configmod
from guardd.config.settings import Config
from guardd.confirm.sender import Sender, SendResult
from guardd.control.server import ControlServer
from guardd.core import Core
from guardd.device.mute import read_muted, read_paused, write_muted, write_paused
from guardd.device.notify import Notifier
from guardd.device.panel import ButtonEdge, mock_factory
from guardd.device.terminal import SimulatedButton, describe, draw_led
from guardd.errors import ConfigError, GuarddError, ModelError
from guardd.listen.microphone import WavMicrophone, WavSource
from guardd.listen.verifier import load_all as load_verifiers
from guardd.pipeline import open_pipeline, speaker_output
from guardd.sounddevices import import_sounddevice
from guardd.speak.player import NEWS, Player
from guardd.speak.voice import ENGINE, INSTALL, Espeak, find_voice
from guardd.homeassistant.advertise import ESPHOME_SERVICE, Advertiser
from guardd.homeassistant.inputs import PeerFrame, PeerNews, Uploading
from guardd.homeassistant.link import Link
from guardd.wyoming.info import satellite_info
from guardd.wyoming.link import WyomingLink

log = logging.getLogger(__name__)

FOR_THE_CORE = (ButtonEdge, SendResult, *NEWS, PeerNews, PeerFrame, Uploading)

class StopFlag:
    """Set by SIGTERM/SIGINT (stop) and SIGHUP (reload); the handler does nothing else."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.reload = False

    def __call__(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.signal = signum


def try_reload(config: Config, core: Core) -> Config | None:
    """The new config if it loads and differs; a bad one is reported and the old one kept."""
    try:
        new = configmod.load(config.source) if config.source != "<defaults>" else Config()
        load_verifiers(new.state_path, new.wake.verify)  # a missing verifier would stop the restart
    except ConfigError as exc:
        problems = exc.problems
    except ModelError as exc:
        problems = [f"{config.source}: {exc}"]
    except Exception as exc:  # noqa: BLE001 - no file on disk may end a running daemon
        problems = [f"{config.source}: could not be read ({type(exc).__name__}: {exc})"]
    else:
        problems = []
    if problems:
        for line in problems:
            log.error("reload refused, the running config stays: %s", line)
        core.note("reload", result="refused", reason=problems[0][-300:])
        return None
    if new == config:
        log.info("reload: %s is unchanged", config.source)
        core.note("reload", result="unchanged")
        return None
    core.note("reload", result="applied")
    return new


def run(config: Config, *, simulate: bool = False, microphone: Path | None = None, loop: bool = False) -> int:
    """Serve until SIGTERM/SIGINT. SIGHUP with a valid, changed config starts everything again
    with it in this process (pending requests are denied first, as at any stop). `microphone`:
    a WAV file stands in for the microphone, in real time (listen/microphone.py's WavSource)."""
    wav = WavSource(microphone, loop=loop) if microphone is not None else None  # a bad file stops us here
    stop = StopFlag()
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, stop) for s in handled}
    notifier = Notifier()
    button = SimulatedButton() if simulate else None
    voice = find_voice()
    if voice is None:
        log.warning("no speech engine (%s): each request is asked for with the LED and a tone, not "
                    "in words; install it: %s", ENGINE, INSTALL)
    try:
        current: Config | None = config
        reloaded = False
        while current is not None:
            current = _serve(current, button, voice, stop, notifier, reloaded=reloaded, wav=wav)
            reloaded = True
            if current is not None:
                notifier.send("RELOADING=1", "STATUS=reloading the config")
    finally:
        notifier.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _serve(config: Config, button: SimulatedButton | None, voice: Espeak | None, stop: StopFlag,
           notifier: Notifier, *, reloaded: bool = False, wav: WavSource | None = None) -> Config | None:
    """One life of the pipeline; returns the config to restart with, or None to stop. After a
    reload the process goes on: no start record (the reload record says it), no stop line."""
    inbox = Inbox()
    deliver = inbox.deliver
    clients: Clients | None = None
    microphone: MicrophoneKeeper | None = None

    def emit(event: dict[str, Any]) -> None:
        log.info("%s", describe(event))
        if event["event"] == "fault":
            notifier.status(f"fault: {event['reason']}")
        if clients is not None:
            clients.publish(event)

    import_sounddevice()  # a missing PortAudio is no fault to retry: say what to install, and stop
    player = Player(speaker_output(config), config.announce.volume, voice, deliver)
    player.start()
    link = satellite_link(config, inbox)
    sender = Sender(deliver, threaded=True, satellite=link)
    next_config: Config | None = None
    with open_pipeline(
        config,
        pin_factory=mock_factory() if button else None,
        clock=time.monotonic,
        on_edge=deliver,
        emit=emit,
        sender=sender,
        speaker=player,
        on_show=draw_led if button else None,
        muted=read_muted(config.state_path),
        persist_mute=functools.partial(write_muted, config.state_path),
        # Home Assistant's pause outlives a restart of guardd (its mute switch stays on while
        # guardd restarts, and it lifts the pause only when it connects again); without
        # satellite mode nothing could ever lift it, so it is not kept.
        paused=link is not None and read_paused(config.state_path),
        persist_pause=functools.partial(write_paused, config.state_path),
        peer=link,
    ) as p:
        core = p.core
        core.start(mode="simulate" if button else "run", config=config.source, muted=int(core.switch.owner),
                   paused=int(core.switch.paused), voice=voice.name if voice else "none", reloaded=reloaded,
                   **({"microphone": f"file {wav.path.name}"} if wav is not None else {}))
        here = f" (here: type `hold {config.button.mute_press_s:g}` and Enter)" if button else ""
        if core.switch.owner:
            log.warning("muted: hold the button for %g s to unmute%s", config.button.mute_press_s, here)
        elif core.switch.paused:
            log.warning("paused by Home Assistant: the microphone opens when it runs the satellite again "
                        "(or hold the button for %g s%s)", config.button.mute_press_s, here)
        for warning in config.warnings:
            log.warning("config: %s", warning)
        server = ControlServer(config.socket, deliver)
        try:
            server.start()
        except GuarddError as exc:
            core.report_fault("socket", str(exc))
            core.stop("fault")
            raise
        advertiser = start_link(link, core)
        open_wav: OpenMicrophone | None = None
        if wav is not None:
            open_wav = lambda _rescan: WavMicrophone(wav, config.audio.queue_s)  # noqa: E731
            log.info("microphone: %s, in real time, from when the microphone opens", wav.path)
        microphone = MicrophoneKeeper(config, core, open_wav)
        inbox.set_wake(microphone.wake)  # the core takes an input now, not at the next block of audio
        clients = Clients(core, server, link)
        sender.start()
        if button is not None:
            button.attach(p.panel.button.pin)
        listening = f"listening (models: {', '.join(config.wake.models)}; control socket {server.path})"
        log.info("%s", listening)
        notifier.ready(listening)
        try:
            while stop.signal is None:
                if stop.reload:
                    stop.reload = False
                    next_config = try_reload(config, core)
                    if next_config is not None:
                        break
                drain(inbox, core, clients)
                now = time.monotonic()
                settles = core.broker.gate.settles_at  # a press is decided the moment it has settled
                block = microphone.read(now, POLL_S if settles is None else settles - now)
                if block is not None:
                    captured, frame = block
                    core.on_audio(frame, captured)
                core.tick()
                # Only a loop that got here is healthy: a stall anywhere above (a log write
                # stuck on the SD card, say) stops the pings and systemd restarts guardd.
                notifier.watchdog(time.monotonic())
        finally:
            notifier.stopping()
            microphone.close()
            reason = signal.Signals(stop.signal).name if stop.signal else "error"
            core.stop(reason, reload=next_config is not None)
            server.stop()
            if advertiser is not None:
                advertiser.stop()
            inbox.close()
            if link is not None:
                link.stop()
            sender.stop()
            player.stop()
            if microphone.overflows or microphone.dropped:
                log.warning("audio: %d overflows, %d blocks dropped", microphone.overflows, microphone.dropped)
        if next_config is not None:
            log.info("reloaded %s", config.source)
        else:
            log.info("stopped (%s)", reason)
    return next_config


def satellite_link(config: Config, inbox: Inbox) -> Link | None:
    """Home Assistant's link, not yet listening: the Wyoming satellite (wyoming.listen), the
    encrypted ESPHome link (esphome.listen; check-config lets only one be set), or None."""
    address = config.wyoming.address
    if address is not None:
        info = satellite_info(config.wyoming.name, config.wake.labels)
        return WyomingLink(address[0], address[1], config.wyoming.allow, info, inbox.peer)
    esphome = config.esphome
    if esphome.address is None:
        return None
    # Imported here: the link needs the esphome extra (check-config names it when it is missing).
    from guardd.esphome.device import ANNOUNCE, BASE_FEATURES, TIMERS, Identity, local_mac
    from guardd.esphome.link import EsphomeLink

    identity = Identity(esphome.name, local_mac(esphome.name), config.wake.labels, BASE_FEATURES | ANNOUNCE | TIMERS)
    return EsphomeLink(esphome.address[0], esphome.address[1], esphome.encryption_key, identity, esphome.allow,
                       inbox.peer)


def start_link(link: Link | None, core: Core) -> Advertiser | None:
    """Listen for Home Assistant (and announce it, with wyoming.advertise or esphome.advertise).
    A listener that cannot start is the link's fault alone: everything else goes on, and the log
    and `guardd status` say why."""
    if link is None:
        return None
    config = core.config
    wyoming = link.destination == "wyoming"
    section = config.wyoming if wyoming else config.esphome
    assert section.address is not None
    try:
        link.start()
    except OSError as exc:
        default = 10700 if wyoming else 6053
        core.report_fault(link.destination, f"cannot listen for Home Assistant on {section.listen}: "
                                            f"{exc.strerror or exc}; set {link.destination}.listen to an address of "
                                            f"this device and a free port (under the systemd unit, a port other than "
                                            f"{default} also needs SocketBindAllow=tcp:PORT: hardware.md)")
        return None
    if wyoming:
        log.info("satellite mode: listening on %s for %s", section.listen, ", ".join(config.wyoming.allow))
    else:
        allow = f" (only from {', '.join(config.esphome.allow)})" if config.esphome.allow else ""
        log.info("satellite mode: listening on %s, encrypted: Home Assistant's ESPHome integration, with the "
                 "key%s", section.listen, allow)
    if not section.advertise:
        return None
    if wyoming:
        advertiser = Advertiser(section.name, section.address[0], link.port or section.address[1])
    else:
        from guardd.esphome.device import local_mac

        mac = local_mac(section.name).replace(":", "").lower()
        advertiser = Advertiser(section.name, section.address[0], link.port or section.address[1],
                                service=ESPHOME_SERVICE, key="esphome.advertise",
                                properties={"mac": mac, "friendly_name": section.name, "version": "guardd"})
    advertiser.start()
    return advertiser


def drain(inbox: Inbox, core: Core, clients: Clients) -> None:
    for item in inbox.take():
        if isinstance(item, FOR_THE_CORE):
            core.take(item)
        else:
            clients.handle(item)
