"""One rule says whether a run is finished (``trainers.core.run_log.run_status``), and every reader follows
it: the shell runners (``python -m reports.finished`` in ``run_once``), results.py's scan,
reproduce / the launchers, and CoOp's parse_test_res.py rule. Also: log.txt is line-buffered,
and an unknown trainer or dataset stops train.py before any output is written."""
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, coop_parse, read_log, run_train
from experiments.runner import run_if_needed
from reports.runs import problems, scan, usable
from trainers.core.run_log import END_SIGNAL, RESUMED_PREFIX, run_status

TEST_ACCURACY = re.compile(r"^\* accuracy: ([\d.]+)%$", re.M)


def sim_argv(trainer, *opts):
    """train.py's flags (without --output-dir) for a small run on the simulated benchmark."""
    return ["--root", "", "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", str(ROOT / "configs/datasets/simulated.yaml"),
            "--config-file", str(ROOT / f"configs/trainers/{trainer}/sim.yaml"),
            "DATASET.NUM_SHOTS", "2", *map(str, opts)]


CMM_OPTS = ("OPTIM.MAX_EPOCH", 3, "TRAIN.CHECKPOINT_FREQ", 1, "DATALOADER.TRAIN_X.BATCH_SIZE", 16)
TIPF_OPTS = ("TEST.FINAL_MODEL", "best_val", "OPTIM.MAX_EPOCH", 1)


def cell(tmp_path, trainer):
    """A seed folder in CoOp's layout, so results.py's scan reads it."""
    return tmp_path / "out" / "simulated" / trainer / "sim_2shots" / "seed1"


def finished_cli(folder):
    """The shell runners' question: the exit status of ``python -m reports.finished``."""
    return subprocess.run([sys.executable, "-m", "reports.finished", str(folder)], cwd=ROOT,
                          capture_output=True, text=True)


def run_once(folder, trainer, *opts):
    """``run_once`` of scripts/run_lib.sh (train.py in a subprocess)."""
    script = f'. scripts/run_lib.sh && run_once "$0" simulated {trainer} configs/trainers/{trainer}/sim.yaml 1 ' \
             + " ".join(["DATASET.NUM_SHOTS", "2", *map(str, opts)])
    return subprocess.run(["bash", "-c", script, str(folder)], cwd=ROOT, check=True, capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable, DATA=""))


def killed_after_epoch(out, epoch, argv):
    """Run train.py in a subprocess that SIGKILLs itself right after ``epoch``'s checkpoint."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from trainers.core import run as train
        from trainers.core.trainer_base import TrainerBase
        after_epoch = TrainerBase.after_epoch
        def after_epoch_then_die(self):
            after_epoch(self)
            if self.epoch + 1 == {epoch}:
                print("about to be killed")
                os.kill(os.getpid(), signal.SIGKILL)
        TrainerBase.after_epoch = after_epoch_then_die
        train.main(["--output-dir", {str(out)!r}, *{argv!r}], echo=False)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_killed_then_resumed_by_hand_counts_for_every_reader(tmp_path):
    out = cell(tmp_path, "CMM")
    argv = sim_argv("CMM", *CMM_OPTS)
    killed_after_epoch(out, 2, argv)
    died = read_log(out)
    # line-buffered: everything printed before the SIGKILL is in log.txt
    assert died.rstrip().endswith("about to be killed") and "Checkpoint saved to" in died
    assert re.search(r"^epoch \[2/3\] batch \[4/4\]", died, re.M)
    assert not run_status(out).finished and finished_cli(out).returncode == 1

    run_train(["--output-dir", out, *argv])  # the same command again, by hand
    log = read_log(out)
    assert log.startswith(died) and not [p for p in os.listdir(out) if p.startswith("log.txt-")]
    [marker] = [line for line in log.splitlines() if line.startswith(RESUMED_PREFIX)]
    resumed = log.split(marker + "\n", 1)[1]
    assert "Found checkpoint" in resumed and "epoch [3/3]" in resumed and "epoch [2/3]" not in resumed
    result = float(TEST_ACCURACY.findall(resumed)[-1])

    status = run_status(out)
    assert status.finished and status.resumed == 1 and status.metrics["accuracy"] == result
    assert finished_cli(out).returncode == 0  # the shell runners
    [run] = usable(scan([tmp_path / "out"]))  # results.py
    assert run.metrics["accuracy"] == result and not problems(scan([tmp_path / "out"]))
    assert run_status(out, END_SIGNAL).finished  # reproduce / launchers (they pass the run's end signal)
    assert coop_parse(log) == result  # CoOp's parse_test_res.py rule on the whole log.txt


def test_best_val_log_cut_after_finish_training_is_unfinished_and_redone_everywhere(tmp_path):
    out = cell(tmp_path, "TipAdapterF")
    argv = sim_argv("TipAdapterF", *TIPF_OPTS)
    run_train(["--output-dir", out, *argv])
    full = read_log(out)
    test_result = float(TEST_ACCURACY.findall(full)[-1])
    cut = full[:full.index(END_SIGNAL + "\n") + len(END_SIGNAL) + 1]  # died before the test result
    assert TEST_ACCURACY.search(cut)  # it holds validation results (before Finish training)
    (out / "log.txt").write_text(cut)

    assert not run_status(out).finished and not run_status(out, END_SIGNAL).finished
    cli = finished_cli(out)
    assert cli.returncode == 1 and "no test result after 'Finish training'" in cli.stdout
    assert not usable(scan([tmp_path / "out"])) and [str(out)] == [f for f, _ in problems(scan([tmp_path / "out"]))]
    assert coop_parse(cut) is None

    redone = run_once(out, "TipAdapterF", *TIPF_OPTS)  # the shell runner redoes it from a clean folder
    assert "The results exist" not in redone.stdout and RESUMED_PREFIX not in read_log(out)
    assert run_status(out).metrics["accuracy"] == test_result
    assert "The results exist at" in run_once(out, "TipAdapterF", *TIPF_OPTS).stdout

    (out / "log.txt").write_text(cut)
    assert run_if_needed(argv, str(out), END_SIGNAL)  # reproduce's launchers redo it too
    assert run_status(out).metrics["accuracy"] == test_result and RESUMED_PREFIX not in read_log(out)


def test_rerun_of_a_finished_run_never_changes_the_result_that_counts(tmp_path):
    out = tmp_path / "run"
    run_train(["--output-dir", out, *sim_argv("ZeroshotCLIP")])
    first = read_log(out)
    counted = run_status(out).metrics["accuracy"]
    run_train(["--output-dir", out, *sim_argv("CMM", "OPTIM.MAX_EPOCH", 1)])  # another result
    [rerun] = [p for p in os.listdir(out) if p.startswith("log.txt-")]
    assert float(TEST_ACCURACY.findall((out / rerun).read_text())[-1]) != counted
    assert read_log(out) == first and run_status(out).metrics["accuracy"] == counted
    assert (out / f"config{rerun[len('log.txt'):]}.yaml").is_file()  # its config follows its log


def test_log_txt_is_line_buffered(tmp_path):
    code = textwrap.dedent(f"""
        import importlib.util, os, signal
        spec = importlib.util.spec_from_file_location("logger", {str(ROOT / "trainers/core/logger.py")!r})
        logger = importlib.util.module_from_spec(spec)  # the module alone: no torch to import
        spec.loader.exec_module(logger)
        with logger.log_to({str(tmp_path)!r}, echo=False):
            print("a line printed just before the kill")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert read_log(tmp_path) == "a line printed just before the kill\n"


def test_unknown_trainer_stops_with_one_line_before_any_output(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "train.py", "--root", "", "--trainer", "CMMM", "--dataset-config-file",
                           "configs/datasets/simulated.yaml", "--output-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: unknown trainer 'CMMM'. Did you mean CMM? Registered: CLAP, CLIPAdapter, CMM,")
    assert not out.exists()


def test_unknown_dataset_stops_before_any_output(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyError) as error:
        run_train(["--output-dir", out, *sim_argv("CMM", "DATASET.NAME", "Simulatd")])
    [line] = error.value.args[0].splitlines()
    assert line.startswith("unknown dataset 'Simulatd'. Did you mean Simulated") and "Registered: Caltech101" in line
    assert not out.exists()


def stale_method_yaml(tmp_path, trainer, **changes):
    """A copy of ``configs/trainers/<trainer>/sim.yaml`` with ``changes`` (``"OPTIM.LR": 0.5``) made:
    the user's edit of a method yaml after a run finished."""
    import yaml

    config = yaml.safe_load((ROOT / f"configs/trainers/{trainer}/sim.yaml").read_text())
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    path = tmp_path / f"{trainer}_edited.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def with_config(argv, method_yaml):
    argv = list(argv)
    argv[argv.index("--config-file") + 1] = str(method_yaml)
    return argv


def test_a_run_finished_under_another_config_is_stale_for_every_runner(tmp_path):
    """Edit the method yaml after a run finished: the in-process runner, the dry run's state, the
    shell runners' question and ``run_once`` all redo it; moving the data or cache root does not."""
    out = cell(tmp_path, "ZeroshotCLIP")
    argv = sim_argv("ZeroshotCLIP")
    assert run_if_needed(argv, str(out)) and not run_if_needed(argv, str(out))
    first = read_log(out)
    moved = with_config(argv, ROOT / "configs/trainers/ZeroshotCLIP/sim.yaml")
    moved[moved.index("--root") + 1] = str(tmp_path / "elsewhere")
    assert not run_if_needed(moved + ["FEATURES.CACHE_DIR", str(tmp_path / "cache")], str(out))

    edited_yaml = stale_method_yaml(tmp_path, "ZeroshotCLIP", **{"TRAINER.ZEROSHOTCLIP.TEMPLATES": "custom"})
    edited = with_config(argv, edited_yaml)
    from trainers.core.run import current_status

    status = current_status(str(out), edited)
    assert not status.finished and status.stale == ("TRAINER.ZEROSHOTCLIP.TEMPLATES: '' -> 'custom'",)
    assert status.why == "stale: finished under another config (TRAINER.ZEROSHOTCLIP.TEMPLATES: '' -> 'custom')"
    assert run_status(out).finished  # without the current config, only the log is read

    cli = subprocess.run([sys.executable, "-m", "reports.finished", "--quiet", str(out), "--", *edited], cwd=ROOT,
                         capture_output=True, text=True)
    assert cli.returncode == 1 and cli.stdout.startswith(f"unfinished: {out} (stale: finished under another config")
    same = subprocess.run([sys.executable, "-m", "reports.finished", "--quiet", str(out), "--", *argv], cwd=ROOT,
                          capture_output=True, text=True)
    assert (same.returncode, same.stdout) == (0, "")
    missing = with_config(argv, tmp_path / "no_such.yaml")
    bad = subprocess.run([sys.executable, "-m", "reports.finished", "--quiet", str(out), "--", *missing], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and f"config file not found: {tmp_path / 'no_such.yaml'}" in bad.stderr
    assert run_status(out).finished  # not a verdict: nothing deleted

    assert run_if_needed(edited, str(out))  # redone from a clean folder, under the new config
    redone = read_log(out)
    assert redone != first and "RESUMED" not in redone and not list(out.glob("log.txt-*"))
    assert "TEMPLATES: custom" in (out / "config.yaml").read_text()
    assert current_status(str(out), edited).finished and not current_status(str(out), argv).finished


def test_run_once_redoes_a_stale_run_and_skips_a_current_one(tmp_path):
    out = cell(tmp_path, "ZeroshotCLIP")
    first = run_once(out, "ZeroshotCLIP")
    assert "(so skip this job)" not in first.stdout and run_status(out).finished
    again = run_once(out, "ZeroshotCLIP")
    assert again.stdout.startswith(f"The results exist at {out} (so skip this job)")
    changed = run_once(out, "ZeroshotCLIP", "TRAINER.ZEROSHOTCLIP.TEMPLATES", "custom")
    assert changed.stdout.startswith(f"unfinished: {out} (stale: finished under another config "
                                     "(TRAINER.ZEROSHOTCLIP.TEMPLATES: '' -> 'custom'))")
    assert "(so skip this job)" not in changed.stdout
    assert "TEMPLATES: custom" in (out / "config.yaml").read_text() and run_status(out).finished


def test_a_seed_drawn_at_random_does_not_make_a_run_stale(tmp_path):
    from trainers.core.run import current_status

    out = cell(tmp_path, "ZeroshotCLIP")
    argv = sim_argv("ZeroshotCLIP")
    argv[argv.index("--seed") + 1] = "-1"
    assert run_if_needed(argv, str(out))
    assert current_status(str(out), argv).finished and not run_if_needed(argv, str(out))
