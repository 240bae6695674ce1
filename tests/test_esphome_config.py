"""The esphome: config section: its key only from a file guardd alone can read or the
environment, never inline; one link serves Home Assistant at a time; `guardd esphome-key` makes a
key the loader and Home Assistant's own client both accept."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from aioesphomeapi.noise import NoiseHandshake

from guardd.config import load as configmod
from guardd.errors import ConfigError
from guardd.esphome.keys import decode_key

KEY = base64.b64encode(bytes(range(1, 33))).decode()


def load(tmp_path, text: str):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"state_dir: {tmp_path}\n" + text)
    return configmod.load(path)


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return [line.split(": ", 1)[1] for line in caught.value.problems]


def key_file(tmp_path, text: str = KEY, mode: int = 0o600):
    path = tmp_path / "esphome.key"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_the_link_is_off_by_default(tmp_path):
    esphome = load(tmp_path, "").esphome
    assert esphome.listen is None and esphome.address is None and not esphome.advertise
    assert esphome.encryption_key == b"" and esphome.name == "guardd"


def test_a_key_from_a_file_only_guardd_can_read_loads_its_bytes(tmp_path):
    config = load(tmp_path, f"esphome:\n  listen: 127.0.0.1:6053\n  encryption_key: {{file: {key_file(tmp_path)}}}\n"
                            "  name: kitchen-pi\n  allow: [192.168.1.10]\n")
    assert config.esphome.encryption_key == bytes(range(1, 33))
    assert config.esphome.address == ("127.0.0.1", 6053)
    assert KEY not in repr(config)  # the key never shows in a repr, a log line or a traceback


def test_a_key_from_the_environment_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("GUARDD_ESPHOME_KEY", KEY)
    config = load(tmp_path, "esphome:\n  listen: '[::1]:6053'\n  encryption_key: {env: GUARDD_ESPHOME_KEY}\n")
    assert config.esphome.encryption_key == bytes(range(1, 33)) and config.esphome.address == ("::1", 6053)


def test_a_key_written_inline_is_refused_with_the_fix(tmp_path):
    found = problems(tmp_path, f"esphome:\n  listen: 127.0.0.1:6053\n  encryption_key: {KEY}\n")
    assert len(found) == 1
    assert found[0].startswith("esphome.encryption_key: is written inline, where anyone who reads the config can take it")
    assert "install -m 600" in found[0] and KEY not in found[0]


@pytest.mark.parametrize("text, message", [
    ("bm90IGEga2V5", "is the base64 of 9 bytes, not 32; make one with `guardd esphome-key`"),
    ("%%%% not base64 %%%%", "is not base64 text (20 characters); make one with `guardd esphome-key`"),
    (base64.b64encode(bytes(32)).decode(), "is all zero bytes, a key everyone knows (ESPHome's provisioning key); "
                                           "make one with `guardd esphome-key`"),
])
def test_a_key_that_is_not_32_fresh_bytes_is_named(tmp_path, text, message):
    found = problems(tmp_path, f"esphome:\n  listen: 127.0.0.1:6053\n  encryption_key: {{file: {key_file(tmp_path, text)}}}\n")
    assert found == [f"esphome.encryption_key: {message}"]


def test_a_key_file_others_can_read_is_refused(tmp_path):
    path = key_file(tmp_path, mode=0o644)
    found = problems(tmp_path, f"esphome:\n  listen: 127.0.0.1:6053\n  encryption_key: {{file: {path}}}\n")
    assert found == [f"esphome.encryption_key: secret file {path} is readable by others (mode 0644); run: chmod 600 {path}"]


def test_listening_without_a_key_is_refused(tmp_path):
    found = problems(tmp_path, "esphome:\n  listen: 0.0.0.0:6053\n")
    assert len(found) == 1 and found[0].startswith("esphome.encryption_key: is required when esphome.listen is set")


def test_both_links_at_once_are_refused(tmp_path):
    found = problems(tmp_path, f"wyoming:\n  listen: 0.0.0.0:10700\n  allow: [192.168.1.10]\n"
                               f"esphome:\n  listen: 0.0.0.0:6053\n  encryption_key: {{file: {key_file(tmp_path)}}}\n")
    assert found == ["esphome.listen: and wyoming.listen are both set; one link serves Home Assistant at a time: "
                     "set wyoming.listen: null for the encrypted ESPHome link, or esphome.listen: null"]


@pytest.mark.parametrize("text, message", [
    ("esphome:\n  name: Kitchen Pi\n", "esphome.name: must be 1 to 31 lowercase letters, digits and hyphens, "
                                       "as ESPHome names a node (got 'Kitchen Pi')"),
    ("esphome:\n  listen: pi.local:6053\n", "esphome.listen: must be ADDRESS:PORT, such as 0.0.0.0:6053 or "
                                            "192.168.1.20:6053 (got 'pi.local:6053': 'pi.local' is not an IP address)"),
    ("esphome:\n  allow: [0.0.0.0]\n", "esphome.allow: '0.0.0.0' would stand for any host; list the Home "
                                       "Assistant host's own address"),
    ("after_wake:\n  upload_to: esphome\n", "after_wake.upload_to: is esphome, but the ESPHome link does not take "
                                            "uploads in this version; use wyoming (satellite mode) or a destination"),
    ("destinations:\n  esphome:\n    url: https://example.com/\n",
     "destinations.esphome: is reserved for Home Assistant's encrypted link (the esphome: section); give this "
     "destination another name"),
])
def test_each_bad_esphome_value_is_named(tmp_path, text, message):
    assert problems(tmp_path, text) == [message]


def test_settings_that_do_nothing_while_off_are_warned_of_and_the_unserved_link_too(tmp_path):
    off = load(tmp_path, "esphome:\n  allow: [192.168.1.10]\n  advertise: true\n")
    assert [w.split(": ", 1)[1] for w in off.warnings] == [
        "esphome.allow: does nothing while esphome.listen is null",
        "esphome.advertise: does nothing while esphome.listen is null"]
    on = load(tmp_path, f"esphome:\n  listen: 127.0.0.1:6053\n  encryption_key: {{file: {key_file(tmp_path)}}}\n")
    assert any("does not serve the ESPHome link yet" in w for w in on.warnings)


def test_esphome_key_prints_a_fresh_key_that_home_assistants_client_accepts(tmp_path):
    keys = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "guardd", "esphome-key"], capture_output=True, text=True,
                             timeout=60, check=True)
        keys.append(out.stdout)
        assert out.stdout.endswith("\n") and out.stdout.count("\n") == 1  # the key alone, for the pipe
    assert keys[0] != keys[1]
    assert len(decode_key(keys[0])) == 32
    NoiseHandshake(keys[0].strip(), b"NoiseAPIInit\x00\x00")  # aioesphomeapi's own decoding takes it
    path = key_file(tmp_path, keys[0].strip())
    assert load(tmp_path, f"esphome:\n  listen: 127.0.0.1:6053\n  encryption_key: {{file: {path}}}\n"
                ).esphome.encryption_key == base64.b64decode(keys[0])


def test_check_config_names_an_inline_key_and_exits_78(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"esphome:\n  listen: 127.0.0.1:6053\n  encryption_key: {KEY}\n")
    out = subprocess.run([sys.executable, "-m", "guardd", "check-config", str(path)], capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, GUARDD_CONFIG=""))
    assert out.returncode == 78
    assert f"{path}:3: esphome.encryption_key: is written inline" in out.stderr and KEY not in out.stderr
