"""Hostile configs: each broken file gives one clear message naming the file, the line and the key,
and `guardd run` refuses to start (exit 78, EX_CONFIG, which the unit does not restart on) rather
than guess. tests/test_config.py holds the main table; these are the cases issue 7 lists that it
did not: destinations that do not exist, unreadable secret files, pins, YAML that is not YAML,
wrong types, files built to blow up the loader (aliases, NUL bytes, nesting 5,000 deep), and
files that are no config text at all (not UTF-8, a directory, a FIFO, too big).

The loader runs a cross-check (pins that collide, upload_to naming a destination) unless one of
its own keys is already wrong; each cross-check case here is otherwise valid.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guardd.config import load as configmod
from guardd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
GUARDD = [sys.executable, "-m", "guardd"]
EXIT_CONFIG = 78
DEST = "destinations:\n  stt:\n    url: https://stt.example/in\n"  # three lines

# name -> (config text, the one expected message, with "cfg.yaml" for the file and SECRET for
# the secret file's path). Every message carries file:line and the dotted key it is about.
HOSTILE = {
    # -- a destination that does not exist --------------------------------------------------------
    "upload_to names no destination": (
        DEST + "after_wake:\n  upload_to: stt2\n",
        "cfg.yaml:5: after_wake.upload_to: names no destination 'stt2' (destinations: stt)",
    ),
    "upload_to with no destinations at all": (
        "after_wake:\n  upload_to: stt\n",
        "cfg.yaml:2: after_wake.upload_to: names no destination 'stt' (destinations: none are configured)",
    ),
    "upload_to is a number": (
        DEST + "after_wake:\n  upload_to: 5\n",
        "cfg.yaml:5: after_wake.upload_to: must be a string or null (got 5)",
    ),
    "a destination without a url": (
        "destinations:\n  stt:\n    method: POST\n",
        "cfg.yaml:2: destinations.stt.url: is required",
    ),
    "a destination url that is not https": (
        "destinations:\n  stt:\n    url: http://stt.example/in\n",
        "cfg.yaml:3: destinations.stt.url: must be https, or http only to a loopback address such as "
        "127.0.0.1 (got 'http://stt.example/in')",
    ),
    "credentials in the url": (
        "destinations:\n  stt:\n    url: https://me:pw@stt.example/in\n",
        "cfg.yaml:3: destinations.stt.url: must not carry credentials; put them in a header read from "
        "{env: ...} or {file: ...}",
    ),
    "destinations as a list": (
        "destinations:\n  - url: https://stt.example/in\n",
        "cfg.yaml:2: destinations: must be a mapping of names to destinations",
    ),
    "a destination named twice": (
        DEST + "  stt:\n    url: https://other.example/in\n",
        "cfg.yaml:4: destinations.stt: appears twice",
    ),
    "a typo in a destination key": (
        DEST + "    uri: https://stt.example/other\n",
        "cfg.yaml:4: destinations.stt.uri: unknown key (known keys here: headers, label, max_bytes, method, "
        "timeout_s, url)",
    ),
    # -- secrets that cannot be read --------------------------------------------------------------
    "secret file readable by others (0644)": (
        DEST + "    headers:\n      Authorization: {file: SECRET}\n",
        "cfg.yaml:5: destinations.stt.headers.Authorization: secret file SECRET is readable by others "
        "(mode 0644); run: chmod 600 SECRET",
    ),
    "secret file missing": (
        DEST + "    headers:\n      Authorization: {file: SECRET.missing}\n",
        "cfg.yaml:5: destinations.stt.headers.Authorization: secret file SECRET.missing does not exist",
    ),
    "secret file is a directory": (
        DEST + "    headers:\n      Authorization: {file: SECRET.d}\n",
        "cfg.yaml:5: destinations.stt.headers.Authorization: secret file SECRET.d is not a regular file",
    ),
    "secret from an unset environment variable": (
        DEST + "    headers:\n      Authorization: {env: GUARDD_TEST_NEVER_SET}\n",
        "cfg.yaml:5: destinations.stt.headers.Authorization: environment variable GUARDD_TEST_NEVER_SET "
        "is not set",
    ),
    "a header guardd sets itself": (
        DEST + "    headers:\n      Host: evil.example\n",
        "cfg.yaml:5: destinations.stt.headers.Host: is set by guardd itself and cannot be configured",
    ),
    "headers as a list": (
        DEST + "    headers: [Authorization]\n",
        "cfg.yaml:4: destinations.stt.headers: must be a mapping of header names to values",
    ),
    # -- pins ---------------------------------------------------------------------------------------
    "negative pin": ("led:\n  pin: -1\n", "cfg.yaml:2: led.pin: must be a BCM GPIO number 0..27 (got -1)"),
    "pin past the header": ("button:\n  pin: 28\n", "cfg.yaml:2: button.pin: must be a BCM GPIO number 0..27 (got 28)"),
    "pin by name": ("button:\n  pin: GPIO27\n", "cfg.yaml:2: button.pin: must be a whole number (got 'GPIO27')"),
    "pin as a float": ("button:\n  pin: 27.0\n", "cfg.yaml:2: button.pin: must be a whole number (got 27.0)"),
    "duplicate pins, both set": (
        "led:\n  pin: 22\nbutton:\n  pin: 22\n",
        "cfg.yaml:4: button.pin: uses GPIO22, which led.pin already uses; give each its own pin",
    ),
    "led moved onto the button's default pin": (
        "led:\n  pin: 27\n",
        "cfg.yaml:2: led.pin: uses GPIO27, which button.pin already uses by default; give each its own pin",
    ),
    # -- YAML that is not YAML, and empty files ---------------------------------------------------------
    "an unclosed quote": (
        'state_dir: "/var/lib/guardd\nwake:\n  threshold: 0.5\n',
        "cfg.yaml:4: not valid YAML: found unexpected end of stream",
    ),
    "a value with a colon in it": (
        "wake:\n  threshold: 0.5: 1\n", "cfg.yaml:2: not valid YAML: mapping values are not allowed here"
    ),
    "a key out of line": (
        "wake:\n  threshold: 0.5\n models: [alexa]\n",
        "cfg.yaml:3: not valid YAML: expected <block end>, but found '<block mapping start>'",
    ),
    "an alias to nothing": (
        "wake:\n  models: *missing\n", "cfg.yaml:2: not valid YAML: found undefined alias 'missing'"
    ),
    "a NUL byte": ("wake:\n  threshold: 0.5\x00\n", "cfg.yaml:2: the character U+0000 may not appear in a "
                   "config; remove it"),
    "a control character": ("wake:\n  models: [al\x07exa]\n", "cfg.yaml:2: the character U+0007 may not "
                            "appear in a config; remove it"),
    "lists nested 5,000 deep": ("\n" + "x: " + "[" * 5000 + "]" * 5000 + "\n", "cfg.yaml:2: lists or mappings "
                                "nest more than 20 deep; a guardd config needs four at most"),
    "mappings nested 5,000 deep": ("x: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", "cfg.yaml:1: lists or "
                                   "mappings nest more than 20 deep; a guardd config needs four at most"),
    "null": ("null\n", "cfg.yaml:1: must be a mapping of keys to values"),
    "a bare string": ("guardd\n", "cfg.yaml:1: must be a mapping of keys to values"),
    # -- wrong types ----------------------------------------------------------------------------------
    "a word for a number": (
        "confirm:\n  timeout_s: thirty\n", "cfg.yaml:2: confirm.timeout_s: must be a number (got 'thirty')"
    ),
    "a quoted yes for a bool": (
        "led:\n  active_high: 'yes'\n", "cfg.yaml:2: led.active_high: must be true or false (got 'yes')"
    ),
    "an empty socket path": ("socket:\n  path: ''\n", "cfg.yaml:2: socket.path: must be a string (got '')"),
    "a number in the model list": (
        "wake:\n  models: [alexa, 5]\n", "cfg.yaml:2: wake.models: must be a list of strings (got ['alexa', 5])"
    ),
    "a url that is a number": (
        "destinations:\n  stt:\n    url: 5\n", "cfg.yaml:3: destinations.stt.url: must be a string (got 5)"
    ),
}


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A secret file with the wrong mode (0644) and a directory next to it; no .missing file."""
    path = tmp_path / "token"
    path.write_text("s3cr3t\n")
    path.chmod(0o644)
    (tmp_path / "token.d").mkdir()
    return path


def write_hostile(tmp_path: Path, text: str, secret: Path) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text.replace("SECRET", str(secret)))
    return path


@pytest.mark.parametrize("text, expected", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_config_gives_one_message_with_file_line_and_key(tmp_path, secret, text, expected):
    path = write_hostile(tmp_path, text, secret)
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    assert info.value.problems == [expected.replace("cfg.yaml", str(path)).replace("SECRET", str(secret))]


def test_the_secret_itself_never_appears_in_a_message(tmp_path, secret):
    path = write_hostile(tmp_path, HOSTILE["secret file readable by others (0644)"][0], secret)
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    assert "s3cr3t" not in str(info.value)


def test_a_secret_file_made_private_loads(tmp_path, secret):
    secret.chmod(0o600)
    path = write_hostile(tmp_path, HOSTILE["secret file readable by others (0644)"][0], secret)
    assert configmod.load(path).destination("stt").headers == (("Authorization", "s3cr3t"),)


def test_a_billion_laughs_file_is_refused_quickly_with_a_short_message(tmp_path):
    """Nine levels of YAML aliases, nine each: 387 million strings if anything expanded them."""
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "x:\n" + "".join(f"  {line}\n" for line in levels) + "wake:\n  models: *i\n"
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    assert time.monotonic() - started < 2.0
    problems = info.value.problems
    assert problems[0].startswith(f"{path}:1: x: unknown key")
    # (an alias's line is its anchor's: line 10 holds the list that *i names)
    assert problems[1].startswith(f"{path}:10: wake.models: must be a list of strings (got [[")
    assert len(problems[1]) < 1000


# -- `guardd run` refuses to start ----------------------------------------------------------------

RUN_CASES = ["upload_to names no destination", "secret file readable by others (0644)",
             "led moved onto the button's default pin", "an unclosed quote", "a NUL byte",
             "lists nested 5,000 deep"]


@pytest.mark.parametrize("name", RUN_CASES)
def test_guardd_run_refuses_a_hostile_config_with_exit_78_and_starts_nothing(tmp_path, secret, name):
    text, expected = HOSTILE[name]
    path = write_hostile(tmp_path, text, secret)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_STATE_HOME=str(home / "state"),
               XDG_RUNTIME_DIR=str(home / "run"))
    env.pop("GUARDD_DEBUG", None)
    result = subprocess.run([*GUARDD, "run", "--config", str(path)], capture_output=True, text=True,
                            timeout=60, env=env, cwd=ROOT)
    assert result.returncode == EXIT_CONFIG, result.stderr
    message = expected.replace("cfg.yaml", str(path)).replace("SECRET", str(secret))
    assert result.stderr.splitlines() == [f"guardd: error: {message}"]
    assert result.stdout == ""
    assert list(home.iterdir()) == [], "guardd created state or a socket before refusing"


# -- files that are not a config's text -----------------------------------------------------------


def _not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"wake:\n  models: [\xff\xfe]\n")
    return path


def _a_directory(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yaml"
    path.mkdir()
    return path


def _a_fifo(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yaml"
    os.mkfifo(path)  # reading it would wait for a writer forever
    return path


def _too_big(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"# padding\n" * 200_000)
    return path


NOT_TEXT = {
    "not UTF-8": (_not_utf8, "cfg.yaml:2: not UTF-8 text (byte 0xff); save the file as UTF-8"),
    "a directory": (_a_directory, "cfg.yaml: is a directory; pass --config PATH to a guardd.yaml file"),
    "a FIFO": (_a_fifo, "cfg.yaml: is not a regular file; pass --config PATH to a guardd.yaml file"),
    "two megabytes": (_too_big, "cfg.yaml: is 2000000 bytes; a config is a few kilobytes (at most 1048576)"),
}


@pytest.mark.parametrize("make, expected", NOT_TEXT.values(), ids=NOT_TEXT.keys())
def test_a_file_that_is_no_config_text_exits_78_with_one_line(tmp_path, make, expected):
    path = make(tmp_path)
    result = subprocess.run([*GUARDD, "check-config", str(path)], capture_output=True, text=True,
                            timeout=30, cwd=ROOT)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.splitlines() == [f"guardd: error: {expected.replace('cfg.yaml', str(path))}"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_config_names_the_fix(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("wake: {}\n")
    path.chmod(0)
    with pytest.raises(ConfigError) as info:
        configmod.load(path)
    assert info.value.problems == [f"{path}: cannot read the config: Permission denied; make it readable "
                                   "by the user guardd runs as"]
