"""reproduce.sh on small simulated experiments: the dry run lists exactly the runs, a second run
skips everything, a half-written folder is redone, missing prerequisites stop everything up
front, and the report folder holds the table, the curves and the provenance."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from experiments import reproduce
from experiments.spec import load_experiment
from reports.runs import scan

SMALL = {
    "description": "two trainers on the simulated benchmark",
    "disk_gb": 0.01,
    "groups": [{"datasets": ["simulated"], "trainers": ["ZeroshotCLIP", "CMM"], "cfg": "sim", "shots": [1, 2],
                "seeds": [1, 2], "opts": ["OPTIM.MAX_EPOCH", "2"]}],
}


def write_experiment(tmp_path, spec, name="small"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def expected_runs(out):
    return sorted(os.path.join(out, "simulated", trainer, f"sim_{k}shots", f"seed{s}")
                  for trainer in ("ZeroshotCLIP", "CMM") for k in (1, 2) for s in (1, 2))


def test_dry_run_lists_exactly_the_runs_and_runs_nothing(tmp_path, capsys):
    out = str(tmp_path / "out")
    reproduce.main([write_experiment(tmp_path, SMALL), "--output", out, "--dry-run"])
    printed = capsys.readouterr().out
    listed = sorted(line.split()[1] for line in printed.splitlines() if line.startswith("  train "))
    assert listed == expected_runs(out)
    assert "simulated: generated features (simulated), nothing to encode" in printed
    assert not os.path.exists(out)


def test_every_experiment_file_loads_and_dry_runs(capsys):
    for name in ("simulated", "rn50_fewshot", "imagenet_shift", "retrieval"):
        experiment = load_experiment(name)
        assert experiment.runs and all(os.path.isfile(r.method_config) for r in experiment.runs), name
    shift = load_experiment("imagenet_shift")
    evals = [r for r in shift.runs if r.model_dir]
    assert {r.dataset for r in evals} == {"imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"}
    assert all(r.model_dir in {t.out for t in shift.runs if not t.eval_only} for r in evals)
    coop_1shot = next(r for r in load_experiment("rn50_fewshot").runs
                      if r.trainer == "CoOp" and r.dataset == "dtd" and r.shots == 1)
    assert coop_1shot.method_config.endswith("CoOp/rn50_ep50.yaml") and "/rn50_1shots/" in coop_1shot.out


def test_reproduce_runs_skips_redoes_and_reports(tmp_path, capsys):
    exp, out = write_experiment(tmp_path, SMALL), str(tmp_path / "out")
    results, _ = reproduce.main([exp, "--output", out])
    assert sorted(r.out for r in results) == expected_runs(out) and {r.status for r in results} == {"done"}
    first = capsys.readouterr().out
    assert "8 run(s) done, 0 already finished, 0 failed" in first
    [shares] = [line for line in first.splitlines() if line.startswith("Run time per trainer: ")]
    percents = [int(p) for p in re.findall(r" (\d+)% \(", shares)]
    assert len(percents) == 2 and 97 <= sum(percents) <= 103  # ZeroshotCLIP and CMM

    report = tmp_path / "out" / "report"
    for name in ("results.md", "results.csv", "results.tex", "provenance.json"):
        assert (report / name).stat().st_size > 0, name
    assert any(p.suffix == ".png" for p in report.iterdir()) and any(p.suffix == ".pdf" for p in report.iterdir())
    [provenance] = json.loads((report / "provenance.json").read_text())["invocations"]
    assert provenance["runs"]["done"] == 8 and provenance["git_commit"]
    assert provenance["config_sha256"][exp] and provenance["packages"]["torch"]

    results, _ = reproduce.main([exp, "--output", out])
    assert {r.status for r in results} == {"skipped"}

    dead = tmp_path / "out" / "simulated" / "CMM" / "sim_2shots" / "seed2"
    (dead / "log.txt").write_text("half a log, no result\n")
    (dead / "stale.txt").write_text("left by the dead run")
    results, _ = reproduce.main([exp, "--output", out])
    assert [r.out for r in results if r.status == "done"] == [str(dead)]
    assert not (dead / "stale.txt").exists() and "* accuracy:" in (dead / "log.txt").read_text()


def test_missing_prerequisites_are_listed_at_once_before_any_work(tmp_path, capsys):
    spec = {"groups": [{"datasets": ["dtd", "oxford_pets"], "trainers": ["CMM"], "cfg": "rn50", "shots": [1],
                        "seeds": [1]},
                       {"datasets": ["simulated"], "trainers": ["CMM"], "cfg": "no_such_cfg", "shots": [1],
                        "seeds": [1]}],
            "disk_gb": 1e9}
    out = tmp_path / "out"
    (tmp_path / "data" / "dtd" / "images").mkdir(parents=True)
    with pytest.raises(SystemExit) as stop:
        reproduce.main([write_experiment(tmp_path, spec), "--output", str(out), "--root", str(tmp_path / "data")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "dtd: split file" in err and "split_zhou_DescribableTextures.json" in err
    assert "oxford_pets: dataset folder" in err
    assert "method config" in err and "no_such_cfg.yaml" in err
    assert "backbone RN50" in err and "HF_HUB_OFFLINE" in err
    assert "free disk" in err
    assert not out.exists()


def test_jobs_and_submitit_local_give_the_same_results_as_one_process(tmp_path):
    spec = dict(SMALL, groups=[dict(SMALL["groups"][0], trainers=["CMM"], shots=[1], seeds=[1, 2])])
    exp = write_experiment(tmp_path, spec)
    accuracies = {}
    for name, flags in {"serial": [], "jobs": ["--jobs", "2"], "submitit": ["--launcher", "submitit-local"]}.items():
        out = tmp_path / name
        if flags:
            subprocess.run([sys.executable, "-m", "experiments.reproduce", exp, "--output", str(out), *flags],
                           cwd=ROOT, check=True, capture_output=True, text=True, timeout=600)
        else:  # in this process: one interpreter start fewer
            reproduce.main([exp, "--output", str(out)])
        accuracies[name] = [(out / "simulated" / "CMM" / "sim_1shots" / f"seed{s}" / "log.txt").read_text()
                            .rsplit("* accuracy: ", 1)[1].split("%")[0] for s in (1, 2)]
    assert accuracies["serial"] == accuracies["jobs"] == accuracies["submitit"]
    assert any((tmp_path / "submitit" / "submitit").iterdir())  # submitit's job folder


@pytest.mark.parametrize("spec, message", [
    ({"groups": [dict(SMALL["groups"][0], epochs=3)]}, "groups[0]: unknown key(s) ['epochs']"),
    ({"groups": [{"datasets": ["simulated"], "trainers": ["CMM"], "cfg": "sim"}]}, "missing key(s) ['seeds', 'shots']"),
    ({"groups": [dict(SMALL["groups"][0], opts=["OPTIM.MAX_EPOCH"])]}, "'opts' must be KEY VALUE pairs"),
    ({"output": "x"}, "no 'groups'"),
])
def test_a_malformed_experiment_file_is_an_error_naming_the_file_and_key(tmp_path, capsys, spec, message):
    path = write_experiment(tmp_path, spec)
    with pytest.raises(SystemExit) as stop:
        reproduce.main([path, "--output", str(tmp_path / "out")])
    assert path in str(stop.value) and message in str(stop.value)
    assert not (tmp_path / "out").exists()


def test_an_unknown_experiment_name_lists_the_known_ones():
    with pytest.raises(SystemExit) as stop:
        reproduce.main(["rn50_fewshott", "--dry-run"])
    assert "no experiment 'rn50_fewshott'" in str(stop.value) and "rn50_fewshot, simulated" in str(stop.value)


TINY = {"description": "one trainer, one shot count, two seeds", "disk_gb": 0.01,
        "groups": [{"datasets": ["simulated"], "trainers": ["CMM"], "cfg": "sim", "shots": [1], "seeds": [1, 2],
                    "opts": ["OPTIM.MAX_EPOCH", "1"]}]}


def test_provenance_keeps_every_invocation_and_says_which_made_each_cell(tmp_path, capsys):
    exp, out = write_experiment(tmp_path, TINY, "tiny"), str(tmp_path / "out")
    report = tmp_path / "out" / "report"
    reproduce.main([exp, "--output", out])
    first = json.loads((report / "provenance.json").read_text())["invocations"][0]
    reproduce.main([exp, "--output", out])  # a no-op rerun: everything skipped
    data = json.loads((report / "provenance.json").read_text())
    assert [r["number"] for r in data["invocations"]] == [1, 2]
    assert data["invocations"][0] == first  # the no-op rerun keeps the first one's timings and counts
    assert first["runs"]["done"] == 2 and first["seconds"]["runs"] > 0 and first["launch"]["extraction"] is not None
    assert first["ran"] == ["simulated/CMM/sim_1shots/seed1", "simulated/CMM/sim_1shots/seed2"]
    assert data["invocations"][1]["runs"]["skipped"] == 2 and data["invocations"][1]["ran"] == []
    assert data["cells_made_by"] == {"simulated/CMM/sim_1shots": [1]}
    assert "| simulated/CMM/sim_1shots | #1 |" in (report / "made_by.md").read_text()

    (tmp_path / "out" / "simulated" / "CMM" / "sim_1shots" / "seed2" / "log.txt").write_text("half a log\n")
    reproduce.main([exp, "--output", out])  # redoes seed 2: the cell is now made by #1 and #3
    data = json.loads((report / "provenance.json").read_text())
    assert data["invocations"][2]["ran"] == ["simulated/CMM/sim_1shots/seed2"]
    assert data["cells_made_by"] == {"simulated/CMM/sim_1shots": [1, 3]}
    assert "| simulated/CMM/sim_1shots | #1, #3 |" in (report / "made_by.md").read_text()
    assert "invocation #3" in capsys.readouterr().out


def test_provenance_history_reads_the_old_format_and_refuses_a_foreign_file(tmp_path):
    from experiments.provenance import UNRECORDED, cells_made_by, read_history

    path = tmp_path / "provenance.json"
    assert read_history(str(path)) == []
    path.write_text(json.dumps({"experiment": "small", "runs": {"done": 8}, "seconds": {"total": 3.0}}))
    [old] = read_history(str(path))  # a single record written before the history: invocation 1
    assert old["number"] == 1 and old["seconds"] == {"total": 3.0}
    experiment = load_experiment(write_experiment(tmp_path, TINY, "tiny"), str(tmp_path / "out"))
    assert cells_made_by(experiment, [old]) == {"simulated/CMM/sim_1shots": [UNRECORDED]}  # its run folders unknown
    path.write_text("[1, 2")
    with pytest.raises(ValueError, match="provenance.json: not a readable provenance file"):
        read_history(str(path))
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="neither an 'invocations' list"):
        read_history(str(path))


def test_the_readme_shift_example_evaluates_the_model_the_demo_trained(tmp_path, monkeypatch):
    """One output tree: a demo run (the `simulated` experiment's output folder, a one-run subset of
    it) is the run the README's simulated shift example evaluates, and the method script given the
    demo's tree (as the README writes it) finds it finished instead of training a second copy."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".venv", "output", ".git", "__pycache__"))
    demo_out = load_experiment("simulated").output
    subset = {"description": "the demo's CMM 16-shot seed-1 run", "disk_gb": 0.01, "output": demo_out,
              "groups": [{"datasets": ["simulated"], "trainers": ["CMM"], "cfg": "sim", "shots": [16],
                          "seeds": [1]}]}  # the demo's own config: a run of another one would be stale
    env = {k: v for k, v in os.environ.items() if k not in ("DATA", "OUTPUT", "MODELS")} | {
        "PYTHON": sys.executable, "SEEDS": "1"}
    monkeypatch.chdir(repo)
    reproduce.main([write_experiment(tmp_path, subset)])
    trained = os.path.join(demo_out, "simulated", "CMM", "sim_16shots", "seed1")
    assert (repo / trained / "log.txt").is_file()

    readme = (ROOT / "README.md").read_text()
    shift_example = re.search(r"`([^`]*bash scripts/eval_shift\.sh CMM sim 16)`", readme)[1]
    done = subprocess.run(["bash", "-c", shift_example], cwd=repo, env=env, check=True, capture_output=True,
                          text=True)
    log = (repo / "output" / "simulated_shift" / "CMM" / "sim_16shots" / "seed1" / "log.txt").read_text()
    assert f"Load {trained}/cmm/" in log and "* accuracy:" in log.split("=> result")[-1], done.stdout
    demo_runs = [os.path.relpath(run.folder, repo) for run in scan([repo / demo_out])]
    assert demo_runs == [trained]  # what the demo's report reads: its own run, not the shift evaluation

    by_hand = re.search(r"`(OUTPUT=\S+ bash scripts/cmm/main\.sh\s+simulated sim 16)`", readme)[1]
    again = subprocess.run(["bash", "-c", " ".join(by_hand.split())], cwd=repo, env=env, check=True,
                           capture_output=True, text=True)
    assert again.stdout.strip() == f"The results exist at {trained} (so skip this job)"


def test_no_experiment_writes_into_a_dataset_folder_of_the_scripts_tree():
    """The scripts' runs live at output/<dataset>/...; an experiment whose output folder were
    output/<dataset> would get the scripts' runs of that dataset inside its own tree (and report)."""
    datasets = {os.path.splitext(f)[0] for f in os.listdir(ROOT / "configs" / "datasets")}
    for path in (ROOT / "configs" / "experiments").glob("*.yaml"):
        output = os.path.normpath(load_experiment(str(path)).output)
        assert not (os.path.dirname(output) == "output" and os.path.basename(output) in datasets), path
