"""Home Assistant's REST speech-to-text as an ordinary destination (docs/home-assistant.md,
the recipe): the kept utterance, approved by a press, is POSTed to
`/api/stt/<entity>` with `X-Speech-Content` and a bearer token read from a file only guardd can
read; Home Assistant's answer (the transcript) comes back as the `sent` event's body. A real
HTTP server on loopback stands in for Home Assistant and keeps what arrives."""

from __future__ import annotations

import pytest
from conftest import replay_events
from harness import Inbox, write_config

from guardd.config import load as configmod
from guardd.errors import ConfigError

SPEECH = "format=wav; codec=pcm; sample_rate=16000; bit_rate=16; channel=1; language=en-US"
ENTITY = "stt.home_assistant_cloud"


def recipe(tmp_path, url: str):
    """The documented recipe, as an owner writes it (the token file as Home Assistant gives it)."""
    token = tmp_path / "ha.token"
    token.write_text("eyJhbGciOiJIUzI1NiJ9.a-long-lived-access-token\n")
    token.chmod(0o600)
    return write_config(
        tmp_path,
        destinations={"home_assistant": {
            "url": f"{url}/api/stt/{ENTITY}",
            "label": "Home Assistant",
            "headers": {"X-Speech-Content": SPEECH,
                        "Authorization": {"file": str(token), "prefix": "Bearer "}},
        }},
        after_wake={"upload_to": "home_assistant"},
        confirm={"timeout_s": 5.0},
    )


def test_a_kept_utterance_reaches_home_assistants_stt_api_only_after_a_press(tmp_path, manifest):
    ha = Inbox()
    try:
        config = recipe(tmp_path, f"http://127.0.0.1:{ha.port}")  # Home Assistant at its root
        wav = manifest["dir"] / manifest["demo"]["file"]
        events = replay_events(wav, config)  # nobody presses
        assert ha.connections == 0 and [e["reason"] for e in events if e["event"] == "decision"] == ["timeout"]
        said = next(e for e in events if e["event"] == "announce")
        assert said["text"].startswith("Send to Home Assistant: ") and "seconds of audio" in said["text"]

        events = replay_events(wav, config, "--press-at", str(said["t"] + said["asks_after_s"] + 0.2))
        [arrival] = ha.arrivals
        kept = next(e for e in events if e["event"] == "utterance")
        assert (arrival.method, arrival.path) == ("POST", f"/api/stt/{ENTITY}")
        assert arrival.headers["Authorization"] == "Bearer eyJhbGciOiJIUzI1NiJ9.a-long-lived-access-token"
        assert arrival.headers["X-Speech-Content"] == SPEECH
        assert arrival.headers["Content-Type"] == "audio/wav"
        assert arrival.body == (tmp_path / "state" / "recordings" / kept["file"]).read_bytes()
        sent = next(e for e in events if e["event"] == "sent")
        assert sent["status"] == 200 and sent["body"] == '{"text":"heard you"}'
    finally:
        ha.close()


def test_the_token_file_must_be_the_daemons_alone(tmp_path):
    config = recipe(tmp_path, "http://127.0.0.1:8123")
    assert "a-long-lived-access-token" not in config.read_text()  # the config holds no secret
    (tmp_path / "ha.token").chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others .*chmod 600"):
        configmod.load(config)
