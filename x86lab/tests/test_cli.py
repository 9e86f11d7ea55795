import subprocess
import sys

from x86lab.cli import EXIT_USAGE, build_parser, main


def test_every_command_has_help():
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    assert actions, "no sub-commands registered"
    for name, sub in actions[0].choices.items():
        assert sub.format_help().strip(), name


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == EXIT_USAGE


def test_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "x86lab.cli", "--help"],
                         capture_output=True, text=True, check=True)
    assert "x86lab" in out.stdout
