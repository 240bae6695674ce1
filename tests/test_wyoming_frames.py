"""Wyoming frames, guardd's own codec against the `wyoming` package (the protocol's reference
implementation, which guardd does not import at run time): what the package writes, guardd
reads back exactly; every frame guardd sends is, byte for byte, what the package's own classes
and writer make of it, and the package reads it back as the same event. What a hostile or
broken peer sends is a FrameError naming it, and never makes guardd read past the bounds or
wait for bytes a header lied about. Over a real socket pair where it matters."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event, read_event, write_event
from wyoming.info import Attribution, Describe, Info, Satellite
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite
from wyoming.snd import Played
from wyoming.version import __version__ as package_version
from wyoming.wake import Detection

from guardd import __version__
from guardd.wyoming import frames
from guardd.wyoming.frames import MAX_DATA, MAX_HEADER, MAX_PAYLOAD, FrameError, encode, read_frame, write_frame
from guardd.wyoming.info import satellite_info
from guardd.wyoming.link import PONG
from guardd.wyoming.satellite import PLAYED
from guardd.wyoming.upload import CHUNK_SAMPLES, pipeline_frames


def framed(*events: Event) -> bytes:
    out = io.BytesIO()
    for event in events:
        write_event(event, out)
    return out.getvalue()


EVENTS = [
    Describe().event(),
    Ping(text="x").event(),
    PauseSatellite().event(),
    RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS).event(),
    AudioStart(rate=16000, width=2, channels=1).event(),
    AudioChunk(rate=16000, width=2, channels=1, audio=bytes(range(256)) * 8).event(),
    AudioStop().event(),
]


def test_what_the_package_writes_is_read_back_exactly_over_a_socket():
    a, b = socket.socketpair()

    def send_all() -> None:
        out = a.makefile("wb")
        for event in EVENTS:
            write_event(event, out)
        a.shutdown(socket.SHUT_WR)

    with a, b:
        writer = threading.Thread(target=send_all)
        writer.start()
        reader = b.makefile("rb")
        got = [read_frame(reader) for _ in EVENTS]
        assert read_frame(reader) is None  # closed between frames
        writer.join()
    assert [(e.type, e.data, e.payload) for e in got] == [(e.type, e.data, e.payload) for e in EVENTS]


def the_packages(pcm: bytes) -> list[Event]:
    """An utterance's pipeline run, as the package's own classes make it (what upload.py says it makes)."""
    step = CHUNK_SAMPLES * 2
    return [
        Detection(name=None).event(),
        RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.TTS).event(),
        AudioStart(rate=16000, width=2, channels=1, timestamp=0).event(),
        *(AudioChunk(rate=16000, width=2, channels=1, audio=pcm[at : at + step], timestamp=at * 1000 // 32000).event()
          for at in range(0, len(pcm), step)),
        AudioStop(timestamp=len(pcm) * 1000 // 32000).event(),
    ]


def test_every_frame_guardd_sends_is_the_packages_own_byte_for_byte_and_reads_back_as_it():
    pcm = bytes(range(256)) * 41 + b"\x01"  # not a whole number of chunks
    ours = [*pipeline_frames(pcm, hashlib.sha256(pcm).hexdigest()), satellite_info("kitchen \u00e9", ("alexa", "hey_jarvis")),
            PONG, PLAYED]
    info = Info(satellite=Satellite(
        name="kitchen \u00e9", attribution=Attribution(name="guardd", url=""), installed=True, version=__version__,
        description="guardd: nothing leaves without a press on the device", area=None, has_vad=True,
        active_wake_words=["alexa", "hey_jarvis"], max_active_wake_words=2, supports_trigger=False))
    theirs = [*the_packages(pcm), info.event(), Pong().event(), Played().event()]
    assert frames.PROTOCOL_VERSION == package_version, "the package the tests use frames as guardd says it does"
    assert len(ours) == len(theirs)
    for mine, package in zip(ours, theirs):
        out = io.BytesIO()
        write_event(package, out)
        assert encode(mine) == out.getvalue(), mine.type
        back = read_event(io.BytesIO(encode(mine)))
        assert (back.type, back.data, back.payload) == (package.type, package.data, package.payload)
    stream = io.BytesIO(b"".join(encode(e) for e in ours))
    assert Detection.from_event(read_event(stream)).name is None
    assert RunPipeline.from_event(read_event(stream)).start_stage == PipelineStage.ASR
    assert AudioStart.from_event(read_event(stream)).rate == 16000
    assert AudioChunk.from_event(read_event(stream)).audio == pcm[: CHUNK_SAMPLES * 2]


def test_write_frame_writes_one_whole_frame_and_flushes():
    a, b = socket.socketpair()
    with a, b:
        write_frame(a.makefile("wb"), PLAYED)
        assert read_event(b.makefile("rb")) == Played().event()


def header(**fields) -> bytes:
    return json.dumps({"type": "audio-chunk", **fields}).encode() + b"\n"


@pytest.mark.parametrize("sent, why", [
    (b"this is not json\n", "the header is not JSON"),
    (b"[1, 2]\n", "the header is not a JSON object"),
    (b"[" * 5000 + b"\n", "the header is not JSON"),
    (b'{"data_length": 2}\n{}', "no event type"),
    (b'{"type": 7}\n', "no event type"),
    (json.dumps({"type": "x" * 100}).encode() + b"\n", "no event type"),
    (header(data=[1]), "data is not a JSON object"),
    (header(data_length=-1), "data_length is not a length"),
    (header(data_length="12"), "data_length is not a length"),
    (header(payload_length=True), "payload_length is not a length"),
    (header(data_length=MAX_DATA + 1), f"data_length {MAX_DATA + 1} is over the limit"),
    (header(payload_length=MAX_PAYLOAD + 1), f"payload_length {MAX_PAYLOAD + 1} is over the limit"),
    (header(data_length=5) + b"[1,2]", "data is not a JSON object"),
    (header(data_length=5) + b"nope!", "data is not a JSON object"),
    (header(data_length=100) + b"{}", "closed the connection inside a frame"),
    (header(payload_length=4096) + bytes(10), "closed the connection inside a frame"),
    (b'{"type": "ping"', "closed the connection inside a header"),
    (b"x" * (MAX_HEADER + 10), f"a header line over {MAX_HEADER} bytes"),
])
def test_a_bad_frame_is_refused_and_says_why(sent, why):
    with pytest.raises(FrameError, match=why):
        read_frame(io.BytesIO(sent))


def test_a_header_that_promises_a_huge_payload_is_refused_before_anything_is_read():
    class Counting(io.BytesIO):
        asked = 0

        def read(self, n=-1):
            Counting.asked += n if n and n > 0 else 0
            return super().read(n)

    stream = Counting(header(payload_length=10**12) + bytes(1000))
    with pytest.raises(FrameError, match="over the limit"):
        read_frame(stream)
    assert Counting.asked == 0


def mutated(data: st.DataObject, good: bytes, edits: int = 8) -> bytes:
    """`good` with 1 to `edits` bytes flipped, runs inserted or deleted, or the rest cut off."""
    raw = bytearray(good)
    for _ in range(data.draw(st.integers(1, edits))):
        at = data.draw(st.integers(0, len(raw)))
        how = data.draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if how == "flip" and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif how == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=20))
        elif how == "delete" and at < len(raw):
            del raw[at]
        elif how == "cut":
            del raw[at:]
    return bytes(raw)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_frames_give_events_or_frame_errors_and_nothing_else(data):
    stream = io.BytesIO(mutated(data, framed(*EVENTS)))
    for _ in range(len(EVENTS) + 40):  # a few more frames than were written, at most
        try:
            event = read_frame(stream)
        except FrameError:
            return  # the connection would be dropped here
        if event is None:
            return
        assert isinstance(event.type, str) and isinstance(event.data, dict)
        assert event.payload is None or len(event.payload) <= MAX_PAYLOAD
    raise AssertionError("more frames than bytes could hold")
