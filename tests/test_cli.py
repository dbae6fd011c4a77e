"""The command line as users meet it: help everywhere, JSON for scripts, exit codes that mean something."""

import json

import pytest

from tests.conftest import HOSTILE, synth_cli

COMMANDS = ["tracks", "eval", "evolve", "show", "lineage", "export", "providers", "report", "plot"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    proc = synth_cli(command, "--help")
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_tracks_json():
    tracks = json.loads(synth_cli("tracks", "--json").stdout)
    assert set(tracks) == {"random_teacher", "single_ar", "mqar"}
    assert tracks["mqar"]["num_queries"] == 8 and tracks["random_teacher"]["target_mse"] == 4e-7


def test_rejected_file_exits_1_naming_line_and_rule():
    proc = synth_cli("eval", str(HOSTILE / "teacher_from_seed_1729.py"), "--track", "random_teacher")
    assert proc.returncode == 1
    assert "[hidden-seed]" in proc.stderr and "line 12" in proc.stderr


def test_missing_file_and_bad_track_exit_2(tmp_path):
    assert synth_cli("eval", str(tmp_path / "nope.py"), "--track", "mqar").returncode == 2
    proc = synth_cli("eval", str(HOSTILE / "print_flood.py"), "--track", "cifar")
    assert proc.returncode == 2 and "unknown track 'cifar'" in proc.stderr


def test_providers_lists_entry_points_and_key_status():
    proc = synth_cli("providers", "--llm", "openai:gpt-4.1-mini", "--json", env={"OPENAI_API_KEY": ""})
    data = json.loads(proc.stdout)
    assert {"openai", "anthropic"} <= set(data["providers"])
    assert data["models"][0]["key"].startswith("missing")
