"""The config loader documents every key and refuses bad configs with exact file:line: key messages."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from guardd.config import load as configmod
from guardd.config.settings import Config, UtteranceConfig
from guardd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "guardd.yaml"
GUARDD = [sys.executable, "-m", "guardd"]
EXIT_CONFIG = 78

KNOWN_TOP = (
    "known keys here: after_wake, announce, audio, button, confirm, destinations, esphome, led, log, retention, socket, "
    "state_dir, utterance, wake, wyoming"
)
KNOWN_WAKE = "known keys here: gate_silence, models, refractory_s, shipped_verifiers, threshold, thresholds, trigger_frames, verify"


def problems_of(tmp_path, text, name="cfg.yaml"):
    """The loader's problem lines for a config text, with the directory stripped from the path."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    prefix = f"{tmp_path}{os.sep}"
    assert all(line.startswith(prefix) for line in info.value.problems), info.value.problems
    return [line[len(prefix):] for line in info.value.problems]


def dotted_keys(cls, prefix=""):
    """Every key a config file may hold, from the dataclasses themselves."""
    keys = []
    for f in configmod.keys_of(cls).values():
        name = f"{prefix}{f.name}"
        keys.append(name)
        if dataclasses.is_dataclass(f.default):
            keys += dotted_keys(type(f.default), f"{name}.")
    return keys


def key_lines(node, prefix=""):
    """dotted key -> 0-based line of the key in a composed YAML mapping."""
    found = {}
    for key_node, value_node in node.value:
        name = f"{prefix}{key_node.value}"
        found[name] = key_node.start_mark.line
        if isinstance(value_node, yaml.MappingNode):
            found.update(key_lines(value_node, f"{name}."))
    return found


def guardd(*args):
    return subprocess.run([*GUARDD, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


# -- the documented example ----------------------------------------------------------------------


def test_the_example_config_is_the_defaults_except_state_dir():
    loaded = configmod.load(EXAMPLE)
    assert loaded.state_dir == "/var/lib/guardd"
    defaults = Config(state_dir=loaded.state_dir, source=str(EXAMPLE))
    # The socket's default depends on who runs guardd; the example names the service's path.
    assert loaded.socket.path == "/run/guardd/guardd.sock"
    assert loaded == dataclasses.replace(defaults, socket=loaded.socket)
    assert dataclasses.replace(loaded.socket, path="") == dataclasses.replace(defaults.socket, path="")
    assert loaded.source == str(EXAMPLE)


def test_every_config_key_is_in_the_example_with_a_comment():
    lines = EXAMPLE.read_text().splitlines()
    where = key_lines(yaml.compose(EXAMPLE.read_text()))
    for key in dotted_keys(Config):
        assert key in where, f"{key} is missing from {EXAMPLE.name}"
        if "." not in key and dataclasses.is_dataclass(getattr(Config(), key)):
            continue  # a section heading; its keys carry the comments
        above = lines[where[key] - 1].strip()
        assert above.startswith("#"), f"{key} in {EXAMPLE.name} has no comment above it"
    extra = set(where) - set(dotted_keys(Config))
    assert not extra, f"{EXAMPLE.name} documents keys the loader does not know: {extra}"


def test_a_good_config_loads_its_values(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        f"state_dir: {tmp_path}\nwake:\n  models: [hey_jarvis, /opt/m/custom.onnx]\n"
        "  threshold: 0.7\n  trigger_frames: 3\nretention:\n  max_age_h: 1\n"
        "audio:\n  device: 3\nled:\n  pin: 5\n  active_high: false\n"
    )
    cfg = configmod.load(path)
    assert cfg.wake.models == ("hey_jarvis", "/opt/m/custom.onnx")
    assert (cfg.wake.threshold, cfg.wake.trigger_frames) == (0.7, 3)
    assert cfg.retention.max_age_h == 1.0 and isinstance(cfg.retention.max_age_h, float)
    assert (cfg.audio.device, cfg.led.pin, cfg.led.active_high) == (3, 5, False)
    assert cfg.state_path == tmp_path
    assert cfg.utterance == UtteranceConfig()


def test_config_errors_are_value_errors():
    assert issubclass(ConfigError, ValueError)


# -- bad configs: the exact message list ---------------------------------------------------------

BAD = {
    "a threshold for a model that is not loaded": (
        "wake:\n  models: [alexa]\n  thresholds: {hey_jarvis: 0.4}\n",
        ["cfg.yaml:3: wake.thresholds: names 'hey_jarvis', which is not in wake.models (alexa)"]),
    "a verifier for a model that is not loaded": (
        "wake:\n  models: [alexa]\n  verify: [hey_jarvis]\n",
        ["cfg.yaml:3: wake.verify: names 'hey_jarvis', which is not in wake.models (alexa)"]),
    "a threshold over 1": (
        "wake:\n  thresholds: {alexa: 1.5}\n",
        ["cfg.yaml:2: wake.thresholds: alexa: must be between 0 and 1 (got 1.5)"]),
    "thresholds as a list": (
        "wake:\n  thresholds: [0.5]\n",
        ["cfg.yaml:2: wake.thresholds: must be a mapping of model names to numbers (got [0.5])"]),
    "satellite mode without allow": (
        "wyoming:\n  listen: 0.0.0.0:10700\n",
        ["cfg.yaml:2: wyoming.allow: is required when wyoming.listen is set: the address of your Home "
         "Assistant host, such as [192.168.1.10] (any other peer is refused)"]),
    "a listen address that is a host name": (
        "wyoming:\n  listen: pi.local:10700\n  allow: [192.168.1.10]\n",
        ["cfg.yaml:2: wyoming.listen: must be ADDRESS:PORT, such as 0.0.0.0:10700 or 192.168.1.20:10700 "
         "(got 'pi.local:10700': 'pi.local' is not an IP address)"]),
    "a listen address without a port": (
        "wyoming:\n  listen: 192.168.1.20\n  allow: [192.168.1.10]\n",
        ["cfg.yaml:2: wyoming.listen: must be ADDRESS:PORT, such as 0.0.0.0:10700 or 192.168.1.20:10700 "
         "(got '192.168.1.20': no port 1..65535 after the last colon)"]),
    "allow that stands for anyone": (
        "wyoming:\n  listen: 0.0.0.0:10700\n  allow: [0.0.0.0]\n",
        ["cfg.yaml:3: wyoming.allow: '0.0.0.0' would stand for any host; list the Home Assistant host's own address"]),
    "uploads to wyoming with satellite mode off": (
        "after_wake:\n  upload_to: wyoming\n",
        ["cfg.yaml:2: after_wake.upload_to: is wyoming, but satellite mode is off; set wyoming.listen and wyoming.allow"]),
    "a destination named wyoming": (
        "destinations:\n  wyoming:\n    url: https://example.org/\n",
        ["cfg.yaml:2: destinations.wyoming: is reserved for Home Assistant's satellite link (the wyoming: "
         "section); give this destination another name"]),
    "bool for an int": ("led:\n  pin: true\n", ["cfg.yaml:2: led.pin: must be a whole number (got True)"]),
    "bool for a number": (
        "wake:\n  threshold: yes\n", ["cfg.yaml:2: wake.threshold: must be a number (got True)"]
    ),
    "string for a number": (
        "wake:\n  threshold: high\n", ["cfg.yaml:2: wake.threshold: must be a number (got 'high')"]
    ),
    "float for an int": (
        "wake:\n  trigger_frames: 2.5\n",
        ["cfg.yaml:2: wake.trigger_frames: must be a whole number (got 2.5)"],
    ),
    "list for device": (
        "audio:\n  device: [1, 2]\n",
        ["cfg.yaml:2: audio.device: must be a device name, an index or null (got [1, 2])"],
    ),
    "bool for device": (
        "audio:\n  device: false\n",
        ["cfg.yaml:2: audio.device: must be a device name, an index or null (got False)"],
    ),
    "string for a list": (
        "wake:\n  models: alexa\n", ["cfg.yaml:2: wake.models: must be a list of strings (got 'alexa')"]
    ),
    "number for a string": ("state_dir: 5\n", ["cfg.yaml:1: state_dir: must be a string (got 5)"]),
    "empty value": ("wake:\n  threshold:\n", ["cfg.yaml:2: wake.threshold: must be a number (got None)"]),
    "threshold above 1": (
        "wake:\n  models: [alexa]\n  threshold: 1.5\n",
        ["cfg.yaml:3: wake.threshold: must be between 0 and 1 (got 1.5)"],
    ),
    "threshold of 0": (
        "wake:\n  threshold: 0\n", ["cfg.yaml:2: wake.threshold: must be between 0 and 1 (got 0.0)"]
    ),
    "integer too large for a float": (
        "wake:\n  threshold: 1" + "0" * 400 + "\n",
        ["cfg.yaml:2: wake.threshold: must be between 0 and 1 (got inf)"],
    ),
    "pin out of range": ("led:\n  pin: 40\n", ["cfg.yaml:2: led.pin: must be a BCM GPIO number 0..27 (got 40)"]),
    "vad frame not 10, 20 or 30": (
        "utterance:\n  vad_frame_ms: 25\n",
        ["cfg.yaml:2: utterance.vad_frame_ms: must be one of 10, 20, 30 (got 25)"],
    ),
    "negative retention": (
        "retention:\n  max_total_mb: -1\n",
        ["cfg.yaml:2: retention.max_total_mb: must be greater than 0 (got -1.0)"],
    ),
    "infinite retention": (
        "retention:\n  max_age_h: .inf\n  max_total_mb: .nan\n",
        [
            "cfg.yaml:2: retention.max_age_h: must be a finite number (got inf)",
            "cfg.yaml:3: retention.max_total_mb: must be greater than 0 (got nan)",
        ],
    ),
    "pre-roll as long as the utterance": (
        "utterance:\n  pre_roll_s: 1\n  max_length_s: 1\n",
        ["cfg.yaml:2: utterance.pre_roll_s: must be shorter than utterance.max_length_s"],
    ),
    "unknown top-level key": ("colour: red\n", [f"cfg.yaml:1: colour: unknown key ({KNOWN_TOP})"]),
    "the source field is not a key": ("source: x\n", [f"cfg.yaml:1: source: unknown key ({KNOWN_TOP})"]),
    "typo in a nested key": (
        "wake:\n  treshold: 0.6\n", [f"cfg.yaml:2: wake.treshold: unknown key ({KNOWN_WAKE})"]
    ),
    "mapping used as a key": (
        "wake:\n  {a: 1}: 2\n", [f"cfg.yaml:2: wake.(a list or mapping): unknown key ({KNOWN_WAKE})"]
    ),
    "duplicate key": ("wake:\n  threshold: 0.6\n  threshold: 0.7\n", ["cfg.yaml:3: wake.threshold: appears twice"]),
    "duplicate of a rejected value": (
        "wake:\n  threshold: 2\n  threshold: 0.5\n",
        [
            "cfg.yaml:2: wake.threshold: must be between 0 and 1 (got 2.0)",
            "cfg.yaml:3: wake.threshold: appears twice",
        ],
    ),
    "duplicate section": ("led:\n  pin: 5\nled:\n  pin: 6\n", ["cfg.yaml:3: led: appears twice"]),
    "section that is a string": ("wake: alexa\n", ["cfg.yaml:1: wake: must be a mapping of keys to values"]),
    "section that is empty": ("wake:\n", ["cfg.yaml:1: wake: must be a mapping of keys to values"]),
    "section that is a list": ("led:\n  - 17\n", ["cfg.yaml:2: led: must be a mapping of keys to values"]),
    "file that is a list": ("- wake\n- led\n", ["cfg.yaml:1: must be a mapping of keys to values"]),
    "duplicate pins": (
        "led:\n  pin: 5\nbutton:\n  pin: 5\n",
        ["cfg.yaml:4: button.pin: uses GPIO5, which led.pin already uses; give each its own pin"],
    ),
    "button on the default led pin": (
        "button:\n  pin: 17\n",
        ["cfg.yaml:2: button.pin: uses GPIO17, which led.pin already uses; give each its own pin"],
    ),
    "YAML syntax error": (
        "wake:\n  threshold: [0.5\n",
        ["cfg.yaml:3: not valid YAML: expected ',' or ']', but got '<stream end>'"],
    ),
    "a tab for indentation": (
        "wake:\n\tthreshold: 0.5\n",
        ["cfg.yaml:2: not valid YAML: found character '\\t' that cannot start any token"],
    ),
    "two documents": ("wake: {}\n---\nled: {}\n", ["cfg.yaml:2: not valid YAML: but found another document"]),
    "a python tag": (
        "wake:\n  threshold: !!python/object:os.system 1\n",
        [
            "cfg.yaml:2: wake.threshold: not a plain YAML value: could not determine a constructor "
            "for the tag 'tag:yaml.org,2002:python/object:os.system'"
        ],
    ),
    "bad model name": (
        "wake:\n  models: [alexa, ok_google]\n",
        [
            "cfg.yaml:2: wake.models: 'ok_google' is neither a built-in model "
            "(alexa, hey_jarvis, hey_mycroft) nor a path to an .onnx file"
        ],
    ),
    "no models": ("wake:\n  models: []\n", ["cfg.yaml:2: wake.models: needs at least one model (for example [alexa])"]),
    "a model twice": ("wake:\n  models: [alexa, alexa]\n", ["cfg.yaml:2: wake.models: lists a model twice"]),
    "five problems and a pin clash": (
        "state_dir: 5\n"
        "wake:\n"
        "  threshold: 2\n"
        "led:\n"
        "  pin: 5\n"
        "button:\n"
        "  pin: 5\n"
        "  mute_press_s: -1\n"
        "bogus: 1\n"
        "utterance:\n"
        "  vad_aggressiveness: 4\n",
        [
            "cfg.yaml:1: state_dir: must be a string (got 5)",
            "cfg.yaml:3: wake.threshold: must be between 0 and 1 (got 2.0)",
            "cfg.yaml:8: button.mute_press_s: must be between 1 and 30 (got -1.0)",
            f"cfg.yaml:9: bogus: unknown key ({KNOWN_TOP})",
            "cfg.yaml:11: utterance.vad_aggressiveness: must be one of 0, 1, 2, 3 (got 4)",
            "cfg.yaml:7: button.pin: uses GPIO5, which led.pin already uses; give each its own pin",
        ],
    ),
    "several problems at once": (
        "state_dir: 5\n"
        "wake:\n"
        "  threshold: 2\n"
        "  models: alexa\n"
        "led:\n"
        "  pin: 40\n"
        "bogus: 1\n"
        "utterance:\n"
        "  vad_aggressiveness: 4\n"
        "  pre_roll: 0.1\n",
        [
            "cfg.yaml:1: state_dir: must be a string (got 5)",
            "cfg.yaml:3: wake.threshold: must be between 0 and 1 (got 2.0)",
            "cfg.yaml:4: wake.models: must be a list of strings (got 'alexa')",
            "cfg.yaml:6: led.pin: must be a BCM GPIO number 0..27 (got 40)",
            f"cfg.yaml:7: bogus: unknown key ({KNOWN_TOP})",
            "cfg.yaml:9: utterance.vad_aggressiveness: must be one of 0, 1, 2, 3 (got 4)",
            "cfg.yaml:10: utterance.pre_roll: unknown key (known keys here: max_length_s, "
            "no_speech_timeout_s, pre_roll_s, trailing_silence_s, vad_aggressiveness, vad_frame_ms)",
        ],
    ),
}


@pytest.mark.parametrize("text, expected", BAD.values(), ids=BAD.keys())
def test_a_bad_config_is_refused_with_every_problem_named(tmp_path, text, expected):
    assert problems_of(tmp_path, text) == expected


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as info:
        configmod.load(tmp_path / "nope.yaml")
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: no such file; pass --config PATH to a guardd.yaml"]


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"state_dir: /var/lib/\xff\n")
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    (line,) = info.value.problems
    assert line == f"{path}:1: not UTF-8 text (byte 0xff); save the file as UTF-8"


# -- the command line ----------------------------------------------------------------------------


def test_check_config_accepts_the_example():
    result = guardd("check-config", str(EXAMPLE))
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{EXAMPLE}: ok\n", "")


def test_check_config_names_every_problem_and_exits_78(tmp_path):
    text, expected = BAD["several problems at once"]
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    result = guardd("check-config", str(path))
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"guardd: error: {tmp_path}{os.sep}{line}" for line in expected]


@pytest.mark.parametrize("name", ["missing", "a python tag"])
def test_check_config_never_shows_a_traceback(tmp_path, name):
    path = tmp_path / "cfg.yaml"
    if name != "missing":
        path.write_text(BAD[name][0])
    result = guardd("check-config", str(path))
    assert result.returncode == EXIT_CONFIG
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"guardd: error: {path}")


@pytest.mark.parametrize("text", ["", "\n\n", "# every setting at its default\n# (nothing else here)\n"])
def test_a_file_with_nothing_but_comments_is_every_default(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    assert configmod.load(path) == Config(source=str(path))
    result = guardd("check-config", str(path))
    assert result.returncode == 0 and result.stdout == f"{path}: ok\n"


def test_a_credential_written_inline_is_a_warning_not_a_silence(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("destinations:\n  stt:\n    url: https://stt.example/in\n"
                    "    headers:\n      Authorization: Bearer abc123\n      Accept: text/plain\n")
    result = guardd("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"guardd: warning: {path}:5: destinations.stt.headers.Authorization: a credential written inline; "
        "read it with {env: VARIABLE} or {file: /path/readable/only/by/guardd} instead"]
    assert "abc123" not in result.stderr
    assert result.stdout == f"{path}: ok, with 1 warning(s)\n"


def test_satellite_mode_loads_and_warns_when_home_assistant_would_get_no_audio():
    config = configmod.parse("wyoming:\n  listen: '[::]:10700'\n  allow: ['192.168.1.10', 'fd00::10']\n", "cfg.yaml")
    assert config.wyoming.address == ("::", 10700) and config.wyoming.allow == ("192.168.1.10", "fd00::10")
    assert config.warnings == ("cfg.yaml:2: wyoming.listen: Home Assistant gets no audio unless "
                               "after_wake.upload_to is wyoming",)
    wyoming = configmod.parse("wyoming:\n  listen: 0.0.0.0:10700\n  allow: [192.168.1.10]\n"
                              "after_wake:\n  upload_to: wyoming\n", "cfg.yaml")
    dest = wyoming.destination("wyoming")
    assert wyoming.warnings == () and dest is not None and dest.spoken_name == "Home Assistant"
