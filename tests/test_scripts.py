"""The demo, the zero-shot script and the results reader, on the simulated benchmark."""
import os
import shutil
import subprocess
import sys

from conftest import ROOT, coop_parse
from scripts import demo, results


def test_demo_runs_skips_finished_runs_and_restarts_dead_ones(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["--output", str(out), "--tasks", "classification", "--trainers", "ZeroshotCLIP", "ZeroshotCLIP2",
            "--shots", "1", "4", "--seeds", "1", "2"]
    demo.main(argv)
    first = capsys.readouterr().out
    assert "8 run(s) done, 0 already finished" in first
    assert "| ZeroshotCLIP  | 53.40 ± 0.00 (2) | 53.40 ± 0.00 (2) |" in first
    dead = out / "simulated" / "ZeroshotCLIP" / "sim_4shots" / "seed2"
    (dead / "log.txt").write_text("half a log, no result\n")
    (dead / "stale.txt").write_text("left by the dead run")
    demo.main(argv)
    second = capsys.readouterr().out
    assert "1 run(s) done, 7 already finished" in second
    assert not (dead / "stale.txt").exists() and "* accuracy: 53.4%" in (dead / "log.txt").read_text()


def test_results_reader_agrees_with_coops_parser(tmp_path):
    demo.main(["--output", str(tmp_path), "--tasks", "classification", "--trainers", "ZeroshotCLIP2", "--shots", "2",
               "--seeds", "1", "2", "3"])
    values, unfinished = results.collect(tmp_path)
    seed_dirs = sorted((tmp_path / "simulated" / "ZeroshotCLIP2" / "sim_2shots").iterdir())
    assert [p.name for p in seed_dirs] == ["seed1", "seed2", "seed3"] and unfinished == []
    key = results.RunKey("simulated", "ZeroshotCLIP2", "sim", 2, "")
    assert values[key] == [coop_parse((d / "log.txt").read_text()) for d in seed_dirs]


def test_zero_shot_script_writes_coop_layout_and_skips_a_finished_run(tmp_path):
    shutil.copytree(ROOT, tmp_path / "repo", ignore=shutil.ignore_patterns(".venv", "output", ".git", "__pycache__"))
    env = dict(os.environ, DATA="unused", PYTHON=sys.executable)
    script = tmp_path / "repo" / "scripts" / "zsclip" / "zeroshot.sh"
    subprocess.run(["bash", str(script), "simulated", "sim"], check=True, env=env, capture_output=True)
    log = tmp_path / "repo" / "output" / "simulated" / "ZeroshotCLIP" / "sim_0shots" / "seed1" / "log.txt"
    assert coop_parse(log.read_text()) == 53.4
    again = subprocess.run(["bash", str(script), "simulated", "sim"], check=True, env=env,
                           capture_output=True, text=True)
    assert "The results exist at" in again.stdout
