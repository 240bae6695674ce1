"""The owner's command line: devices, clear errors that name the fix, log and verify."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest
from harness import GUARDD, ROOT, Daemon, alsa_env, guardd, write_config

from guardd.auditlog.reading import read_records

NO_PORTAUDIO = (
    "import ctypes.util, sys\n"
    "real = ctypes.util.find_library\n"
    "ctypes.util.find_library = lambda name: None if 'portaudio' in name else real(name)\n"
    "from guardd.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def write_wav(path: Path, rate: int = 16000, channels: int = 1, seconds: float = 0.5) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(int(rate * seconds) * 2 * channels))
    return path


def test_devices_lists_the_alsa_inputs_and_outputs_with_their_indexes(tmp_path):
    env = alsa_env(tmp_path, write_wav(tmp_path / "in.wav"))
    result = guardd("devices", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    inputs, outputs = out.split("output devices (for audio.output_device):")
    assert inputs.startswith("input devices (for audio.device):")
    assert "guardd_in" in inputs and "guardd_out" in outputs
    for part in (inputs, outputs):
        assert any(line.startswith(">") and "default" in line for line in part.splitlines())


def test_a_missing_portaudio_library_names_the_package_to_install(tmp_path):
    for command in (["devices"], ["run", "--simulate", "--config", str(write_config(tmp_path))]):
        result = subprocess.run(
            [sys.executable, "-c", NO_PORTAUDIO, *command], capture_output=True, text=True,
            timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            "guardd: error: the PortAudio library is missing; install it with: "
            "sudo apt install libportaudio2"
        )


def test_an_unknown_input_device_is_a_fault_that_points_to_guardd_devices(tmp_path):
    """The daemon keeps running and retrying (a USB microphone may be plugged in later)."""
    config = write_config(tmp_path, audio={"device": "no such microphone"})
    d = Daemon(tmp_path, config, write_wav(tmp_path / "in.wav"))
    d.wait_for_record("fault", timeout_s=30)
    time.sleep(1.0)  # several retries happen in this second; the fault is still logged once
    assert d.stop() == 0
    records = d.records()
    assert [r["type"] for r in records] == ["start", "fault", "stop"]
    assert "no such microphone" in records[1]["reason"] and "guardd devices" in records[1]["reason"]
    assert "[LED ◌ flicker" in d.said()


def test_replay_refuses_audio_that_is_not_16khz_mono_and_says_how_to_convert(tmp_path, config_path):
    wav = write_wav(tmp_path / "cd.wav", rate=44100, channels=2)
    result = guardd("replay", str(wav), "--config", str(config_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"guardd: error: {wav} is 16-bit PCM, stereo, 44.1 kHz; guardd needs 16-bit PCM, mono, 16 kHz: "
        f"convert with `sox {wav} -b 16 -r 16000 -c 1 out.wav`")
    assert not (tmp_path / "state" / "log" / "segment-000001.jsonl").exists()


def riff(tag: int, channels: int, rate: int, bits: int, data: bytes = bytes(64), extensible: bool = False) -> bytes:
    """A WAV file's bytes with the given fmt chunk, written by hand: the wave module writes only PCM."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block, block, bits)
    if extensible:  # cbSize, valid bits, channel mask, then the SubFormat GUID led by the real tag
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_replay_of_a_float_wav_names_the_format_and_the_sox_command_that_converts_it(tmp_path, config_path):
    wav = tmp_path / "float.wav"
    wav.write_bytes(riff(3, 1, 16000, 32, struct.pack("<4000f", *([0.0] * 4000))))
    result = guardd("replay", str(wav), "--config", str(config_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"guardd: error: {wav} is 32-bit float audio; guardd needs 16-bit PCM, mono, 16 kHz: "
        f"convert with `sox {wav} -b 16 -r 16000 -c 1 out.wav`")
    assert not (tmp_path / "state" / "log").exists(), "nothing is logged for a file that cannot play"
    if shutil.which("sox"):  # the command the message gives does make a file replay accepts
        subprocess.run(["sox", str(wav), "-b", "16", "-r", "16000", "-c", "1", "out.wav"], cwd=tmp_path,
                       check=True, timeout=30)
        assert guardd("replay", str(tmp_path / "out.wav"), "--config", str(config_path)).returncode == 0


BAD_WAVS = {
    "empty.wav": (b"", "{path} is empty (0 bytes): not a WAV file"),
    "8bit.wav": (riff(1, 1, 16000, 8), "{path} is 8-bit PCM, mono, 16 kHz; {fix}"),
    "24bit.wav": (riff(1, 1, 16000, 24, extensible=True), "{path} is 24-bit PCM, mono, 16 kHz; {fix}"),
    "stereo48k.wav": (riff(1, 2, 48000, 16), "{path} is 16-bit PCM, stereo, 48 kHz; {fix}"),
    "8k.wav": (riff(1, 1, 8000, 16), "{path} is 16-bit PCM, mono, 8 kHz; {fix}"),
    "alaw.wav": (riff(6, 1, 8000, 8), "{path} is A-law audio; {fix}"),
    "cut.wav": (riff(1, 1, 16000, 16)[:30],
                "{path} ends inside its WAV header (30 bytes): it was cut short; record or export it again"),
    "song.mp3.wav": (b"ID3\x04\x00" + bytes(100), "{path} is not a WAV file (no RIFF WAVE header); {fix}"),
}


def test_every_malformed_wav_says_what_it_is_and_how_to_fix_it(tmp_path):
    from guardd.listen.microphone import read_wav_frames
    from guardd.errors import AudioError

    for name, (data, message) in BAD_WAVS.items():
        path = tmp_path / name
        path.write_bytes(data)
        fix = f"guardd needs 16-bit PCM, mono, 16 kHz: convert with `sox {path} -b 16 -r 16000 -c 1 out.wav`"
        with pytest.raises(AudioError) as caught:
            next(read_wav_frames(path))
        assert str(caught.value) == message.format(path=path, fix=fix), name


def test_replay_of_a_missing_file_says_so(tmp_path, config_path):
    result = guardd("replay", str(tmp_path / "nope.wav"), "--config", str(config_path))
    assert result.returncode == 1
    assert result.stderr.strip() == f"guardd: error: {tmp_path / 'nope.wav'}: no such file"


def test_replay_with_a_state_dir_configured_uses_it_and_says_nothing_of_scratch(tmp_path, config_path):
    result = guardd("replay", str(write_wav(tmp_path / "quiet.wav")), "--config", str(config_path))
    assert result.returncode == 0 and "replay: state in" not in result.stderr, result.stderr
    assert [r["type"] for r in read_records(tmp_path / "state" / "log")] == ["start", "stop"]


def test_log_and_verify_read_what_replay_wrote_and_verify_catches_an_edit(tmp_path, config_path, manifest):
    wav = manifest["dir"] / manifest["demo"]["file"]
    assert guardd("replay", str(wav), "--config", str(config_path)).returncode == 0
    shown = guardd("log", "--config", str(config_path)).stdout.splitlines()
    assert [line.split()[3] for line in shown] == ["start", "wake", "utterance", "stop"]
    ok = guardd("verify", "--config", str(config_path))
    assert ok.returncode == 0 and "ok, 4 records, chain intact" in ok.stdout

    segment = tmp_path / "state" / "log" / "segment-000001.jsonl"
    segment.write_text(segment.read_text().replace('"model":"alexa"', '"model":"hey_jarvis"'))
    bad = guardd("verify", "--config", str(config_path))
    assert bad.returncode == 1
    assert "seq 2: modified" in bad.stdout


def test_the_command_line_hashes_with_pythons_own_sha256_and_still_gets_the_standard_answers():
    """hashlib's OpenSSL module costs 3.2 MB of memory; guardd leaves it unloaded. SHA-256 and
    HMAC-SHA256 must still give the published test vectors (FIPS 180-2, RFC 4231 case 2)."""
    code = (
        "import guardd.cli.main, sys, hashlib, hmac\n"
        "print(sys.modules['_hashlib'] is None)\n"
        "print(hashlib.sha256(b'abc').hexdigest())\n"
        "print(hmac.new(b'Jefe', b'what do ya want for nothing?', 'sha256').hexdigest())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == [
        "True",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ]


def test_python_m_guardd_runs_from_the_folder_that_holds_a_clone_named_guardd(tmp_path):
    """A clone at ~/guardd, run from ~: the folder `guardd` (no __init__.py) must not pass for the
    package. scripts/setup.sh puts the clone on the venv's sys.path for this; run it again if
    this fails with "cannot import name '__version__' ... (unknown location)"."""
    (tmp_path / "guardd").symlink_to(ROOT, target_is_directory=True)
    bin_dir = Path(sys.executable).parent
    for command in ([sys.executable, "-m", "guardd", "--version"], [str(bin_dir / "guardd"), "--version"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.startswith("guardd "), (command, result.stderr)
    where = subprocess.run([sys.executable, "-c", "import guardd; print(guardd.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert where.stdout.strip() == str(ROOT / "guardd" / "__init__.py"), where.stderr


@pytest.mark.parametrize("args, message", [
    (["--to", "inbox"], "say what to send: --text T (a message, read out) or FILE, --file F (an upload; "
                        "- for standard input)"),
    (["--to", "inbox", "--text", "a", "note.txt"], "give one of --text, --file or FILE, not more"),
])
def test_send_names_what_to_send_without_an_internal_name(args, message):
    result = subprocess.run([*GUARDD, "send", *args, "--socket", "/nonexistent.sock"], capture_output=True,
                            text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr == f"guardd send: {message}\n"
    assert "stdin" not in result.stderr and "source" not in result.stderr


def test_check_config_names_a_verifier_that_is_not_there_and_how_to_make_it(tmp_path):
    config = write_config(tmp_path, wake={"models": ["alexa"], "verify": ["alexa"]})
    result = guardd("check-config", str(config), timeout=60)
    assert result.returncode == 1
    assert "wake.verify names alexa, but" in result.stderr and "run guardd tune --write" in result.stderr
