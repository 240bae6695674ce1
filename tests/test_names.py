"""Files and requests are named by the seq of the record that announced them, also when the log
rotates: a rotation writes its `segment` (and maybe `retention`) record first, so the next seq
cannot be guessed as head + 1. With 4 KiB segments the log rotates every few records; `bench`
records pad it so a rotation falls right before a request and right before an utterance. Real
pipeline: real log, real openwakeword on the demo recording, MockFactory pins."""

from __future__ import annotations

import contextlib

from harness import T0, Device

from guardd.listen.microphone import read_wav_frames
from guardd.auditlog.reading import read_records
from guardd.config.settings import Config, ConfirmConfig, DestinationConfig, LogConfig

SEGMENT = 4096


def test_every_name_carries_the_seq_of_the_record_that_announced_it(tmp_path, inbox, manifest):  # noqa: F811
    config = Config(state_dir=str(tmp_path / "state"), log=LogConfig(segment_max_bytes=SEGMENT),
                    destinations=(DestinationConfig(url=inbox.url, name="inbox"),),
                    confirm=ConfirmConfig(timeout_s=5.0, queue=4))
    speech = list(read_wav_frames(manifest["dir"] / manifest["demo"]["file"]))
    with contextlib.ExitStack() as stack:
        d = Device(config, inbox, stack)
        log = d.p.auditlog

        def pad_to(end: int) -> None:
            """Append `bench` records until the current segment is exactly `end` bytes long."""
            while log.path.stat().st_size > end - 600:  # too full: let it roll into a new one
                d.core.note("bench", note="")
            before = log.path.stat().st_size
            d.core.note("bench", note="")
            overhead = log.path.stat().st_size - before
            d.core.note("bench", note="x" * (end - log.path.stat().st_size - overhead))
            assert log.path.stat().st_size == end

        for k in range(3):  # full to the limit: the next record, a request, rotates first
            pad_to(SEGMENT)
            d.submit(b"filler %d" % k, client=100 + k)
            d.core.cancel_client(100 + k)
        for _ in range(2):  # just short of it: the wake fills it, the utterance rotates first
            pad_to(SEGMENT - 10)
            for frame in speech + [bytes(len(speech[0]))] * 40:
                d.core.on_audio(frame)
                d.clock[0] = T0 + d.core.listener.audio_t
    records = list(read_records(config.state_path / "log"))
    after_rotation = {records[i + 1]["type"] for i, r in enumerate(records[:-1]) if r["type"] == "segment"}
    assert {"request", "utterance"} <= after_rotation, "the test must put a rotation right before both"
    utterances = [r for r in records if r["type"] == "utterance"]
    requests = [r for r in records if r["type"] == "request"]
    assert len(utterances) == 2 and requests
    for r in utterances:
        assert r["file"] == f"utterance-{r['seq']:08d}.wav"
        assert (config.state_path / "recordings" / r["file"]).is_file()
    for r in requests:
        assert r["id"] == f"r{r['seq']}"
    decided = {r["id"] for r in records if r["type"] == "decision"}
    assert decided == {r["id"] for r in requests}  # and every decision names its request's id
