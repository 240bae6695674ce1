"""A config with a problem never locks the owner out: `mute` always reaches the daemon and the
reading commands go on with what the file still says, each with a warning naming the problem
(issue 27, item 11). And the smaller CLI defects of item 13: replay leaves no scratch state,
check-config refuses two files, export --dir reads one state."""

from __future__ import annotations

import shutil

import pytest
from conftest import files_under, silent_wav, unconfigured
from harness import Daemon, guardd, write_config

from guardd.auditlog.reading import read_records

TYPO = "wake:\n  treshold: 0.6\n"  # one misspelt key: the config does not load


@pytest.fixture
def running(tmp_path):
    """A daemon on a good config, and beside it the same file with a typo added."""
    config = write_config(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(config.read_text() + TYPO)
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "quiet.wav", 30.0))
    try:
        d.wait_until(lambda: "listening (models" in d.said(), "the daemon to listen")
        yield d, broken
    finally:
        d.close()


def test_mute_with_a_typo_in_the_config_still_reaches_the_daemon_and_names_the_problem(running):
    d, broken = running
    result = guardd("mute", "--config", str(broken))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("muted: the microphone is closed")
    warning = result.stderr.splitlines()[0]
    assert warning.startswith(f"guardd: warning: {broken}:")
    assert "wake.treshold: unknown key" in warning
    assert "Going on with state_dir and socket as the file gives" in warning
    d.wait_until(lambda: d.records("mute"), "the mute record")
    assert d.records("mute")[0]["source"].startswith("socket uid=")


def test_status_and_the_log_commands_go_on_with_the_state_the_broken_file_names(running):
    d, broken = running
    status = guardd("status", "--config", str(broken))
    assert status.returncode == 0 and status.stdout.startswith("state:"), status.stderr
    assert "wake.treshold: unknown key" in status.stderr
    log = guardd("log", "--config", str(broken))
    assert log.returncode == 0, log.stderr
    assert [line.split()[3] for line in log.stdout.splitlines()] == ["start"]
    verify = guardd("verify", "--config", str(broken))
    assert verify.returncode == 0 and "ok, 1 records, chain intact" in verify.stdout, verify.stdout
    assert "guardd: warning: " in verify.stderr


def test_mute_with_a_config_that_is_not_yaml_tries_the_default_socket(tmp_path):
    """Nothing can be read from the file: the default socket path (here systemd's
    RUNTIME_DIRECTORY, which it honours first) is where the daemon is found."""
    run = tmp_path / "run"
    run.mkdir()
    config = write_config(tmp_path, socket={"path": str(run / "guardd.sock")})
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("wake: [unclosed\n")
    d = Daemon(tmp_path, config, silent_wav(tmp_path / "quiet.wav", 30.0), sock=run / "guardd.sock")
    try:
        result = guardd("mute", "--config", str(garbage), env={"RUNTIME_DIRECTORY": str(run)})
        assert result.returncode == 0, result.stderr
        assert "not valid YAML" in result.stderr and "Going on with everything at the defaults" in result.stderr
        d.wait_until(lambda: d.records("mute"), "the mute record")
    finally:
        d.close()


def test_run_and_send_paths_that_change_things_still_refuse_a_broken_config(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(TYPO)
    assert guardd("log", "init", "--config", str(broken)).returncode == 78
    assert guardd("run", "--config", str(broken)).returncode == 78
    assert guardd("check-config", str(broken)).returncode == 78


def test_check_config_refuses_two_different_files(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(TYPO)
    b.write_text("wake:\n  threshold: 0.6\n")
    result = guardd("check-config", "--config", str(a), str(b))
    assert result.returncode == 2
    assert result.stderr == (f"guardd check-config: two files given ({a} with --config, {b} as PATH); "
                             "name the one to check once\n")
    same = guardd("check-config", "--config", str(b), str(b))
    assert same.returncode == 0 and same.stdout == f"{b}: ok\n"


def test_replay_without_a_state_dir_leaves_nothing_behind_and_says_so(tmp_path, manifest):
    env, default_state = unconfigured(tmp_path)
    before = files_under(default_state)
    no_state_dir = tmp_path / "guardd.yaml"
    no_state_dir.write_text("announce:\n  output: none\n")
    result = guardd("replay", str(manifest["dir"] / manifest["demo"]["file"]), "--config", str(no_state_dir),
                    "--json", env=env)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("replay: ")]
    assert len(said) == 1 and said[0].startswith("replay: no state_dir configured, so its log and recordings are in ")
    assert said[0].endswith(" while it runs and deleted after; set state_dir in a config to keep them")
    assert '"event": "utterance"' in result.stdout  # a recording was kept while it ran
    assert list((tmp_path / "tmp").glob("guardd-replay-*")) == [], "the scratch state (and its recording) stayed"
    assert files_under(default_state) == before, f"replay touched {default_state}"


def test_export_of_a_log_directory_reads_the_state_around_it(tmp_path, manifest):
    """--dir names <state>/log: the recordings beside it are exported and the report names that state."""
    config = write_config(tmp_path)
    assert guardd("replay", str(manifest["dir"] / manifest["demo"]["file"]), "--config", str(config)).returncode == 0
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "state", moved)
    out = tmp_path / "export"
    result = guardd("export", str(out), "--dir", str(moved / "log"))
    assert result.returncode == 0, result.stdout + result.stderr
    report = (out / "verification.txt").read_text().splitlines()
    assert report[0].startswith(f"guardd export of {moved}, ")
    assert "recordings: 1" in report
    assert [p.name for p in (out / "recordings").iterdir()] == ["utterance-00000003.wav"]
    assert [r["type"] for r in read_records(out / "log")] == ["start", "wake", "utterance", "stop"]
