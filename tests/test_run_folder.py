"""What a run folder holds besides the checkpoints: Dassl's TensorBoard scalars, the resolved
config.yaml, and a log.txt headed by the environment it ran in."""
import re
import subprocess
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, coop_parse, read_log, run_train
from trainers.core.config import get_cfg_default, merge_file
from trainers.core.environment import collect_env_info, git_commit

BATCHES, EPOCHS = 4, 2  # 2 shots x 32 classes in batches of 16, two epochs


def sim_args(out, *opts, trainer="CMM", flags=()):
    cfg = ["--config-file", ROOT / "configs/trainers/CMM/sim.yaml"] if trainer == "CMM" else []
    return [*flags, "--root", "", "--seed", 1, "--trainer", trainer,
            "--dataset-config-file", ROOT / "configs/datasets/simulated.yaml", *cfg,
            "--output-dir", out, "DATASET.NUM_SHOTS", 2, *opts]


def cmm_run(out, *opts):
    return run_train(sim_args(out, "OPTIM.MAX_EPOCH", EPOCHS, "DATALOADER.TRAIN_X.BATCH_SIZE", 16, *opts))


def scalars(out):
    """``{tag: [(step, value), ...]}`` as TensorBoard reads them from ``<out>/tensorboard``."""
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_training_run_writes_dassls_scalars(tmp_path):
    out = tmp_path / "cmm"
    cmm_run(out, "TEST.FINAL_MODEL", "best_val")
    found, log = scalars(out), read_log(out)
    assert list(out.joinpath("tensorboard").glob("events.out.tfevents.*"))
    steps = list(range(EPOCHS * BATCHES))  # epoch * num_batches + batch_idx
    assert {"train/loss", "train/ce", "train/triplet", "train/acc", "train/lr"} <= set(found)
    assert [s for s, _ in found["train/lr"]] == steps and [s for s, _ in found["train/loss"]] == steps
    # every batch's log line prints the same lr and running mean loss
    printed = re.findall(r"^epoch \[\d+/\d+\] batch \[\d+/\d+\] .* loss \S+ \((\S+)\) .* lr (\S+) eta", log, re.M)
    assert [(f"{loss:.4f}", f"{lr:.4e}") for (_, loss), (_, lr) in zip(found["train/loss"], found["train/lr"])] \
        == printed
    assert [s for s, _ in found["val/accuracy"]] == [0, 1]  # one validation per epoch (best_val)
    [(step, accuracy)] = found["test/accuracy"]
    assert step == EPOCHS - 1 and f"{accuracy:.1f}" == f"{coop_parse(log):.1f}"
    assert {"test/error_rate", "test/macro_f1"} <= set(found)


def test_training_free_and_eval_only_runs_write_test_scalars(tmp_path):
    for flags in ((), ("--eval-only",)):
        out = tmp_path / f"zeroshot{len(flags)}"
        run_train(sim_args(out, trainer="ZeroshotCLIP", flags=flags))
        found = scalars(out)
        assert not [tag for tag in found if tag.startswith("train/")]
        [(step, accuracy)] = found["test/accuracy"]
        assert step == 0 and f"{accuracy:.1f}" == f"{coop_parse(read_log(out), end_signal='=> result'):.1f}"


def test_retrieval_runs_write_their_map_scalars(tmp_path):
    out = tmp_path / "retrieval"
    run_train(["--root", "", "--seed", "1", "--trainer", "ZeroshotCLIP", "--dataset-config-file",
               str(ROOT / "configs/datasets/simulated_pairs.yaml"), "--output-dir", str(out), "DATASET.NUM_SHOTS", "1"])
    found = scalars(out)
    for metric in ("mAP", "i2t_mAP", "t2i_mAP"):
        [(step, value)] = found[f"test/{metric}"]
        assert f"{value:.2f}" == f"{coop_parse(read_log(out), keyword=metric):.2f}", metric


def test_config_yaml_reloads_to_the_run_config_and_follows_reruns(tmp_path):
    out = tmp_path / "cmm"
    trainer = cmm_run(out, "TRAINER.CMM.MARGIN", 0.5)
    reloaded = get_cfg_default()
    merge_file(reloaded, out / "config.yaml")
    reloaded.freeze()
    assert reloaded == trainer.cfg and reloaded.TRAINER.CMM.MARGIN == 0.5
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]  # written atomically

    run_train(sim_args(out, trainer="ZeroshotCLIP"))  # a rerun into the folder keeps the first run's files
    rerun_log = next(p.name for p in out.iterdir() if p.name.startswith("log.txt-"))
    rerun_config = f"config{rerun_log[len('log.txt'):]}.yaml"  # config-<time>.yaml beside log.txt-<time>
    for config, trainer_name in (("config.yaml", "CMM"), (rerun_config, "ZeroshotCLIP")):
        cfg = get_cfg_default()
        merge_file(cfg, out / config)
        assert cfg.TRAINER.NAME == trainer_name


def test_log_starts_with_the_environment(tmp_path):
    out = tmp_path / "zeroshot"
    run_train(sim_args(out, trainer="ZeroshotCLIP"))
    lines = read_log(out).splitlines()
    assert lines[:3] == ["*****************", "** Environment **", "*****************"]
    fields = dict(line.split(": ", 1) for line in lines[3:lines.index("")])
    assert list(fields) == ["Date", "Host", "Command", "Working directory", "Git commit", "Python", "Packages",
                            "CUDA", "CPUs"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d", fields["Date"])
    assert fields["Command"].endswith(f"train.py --root '' --seed 1 --trainer ZeroshotCLIP --dataset-config-file "
                                      f"{ROOT / 'configs/datasets/simulated.yaml'} --output-dir {out} "
                                      "DATASET.NUM_SHOTS 2")
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown .*", fields["Git commit"])
    assert re.fullmatch(r"torch \S+, torchvision \S+, open_clip \S+, Pillow \S+", fields["Packages"])
    following = lines[lines.index("") + 1:]
    assert following[0] == "Setting fixed seed: 1" and following[1:4] == ["*" * 15, "** Arguments **", "*" * 15]
    assert "Collecting env info ..." in lines and "** System info **" in lines


def test_system_info_is_collected_once_per_process_and_written_into_every_log(tmp_path, monkeypatch):
    """torch's collect_env runs pip and nvidia-smi (a third of a zero-shot run): a launcher's
    worker collects it for its first run and writes the same report into the next runs' logs."""
    import torch.utils.collect_env

    calls = []
    monkeypatch.setattr(torch.utils.collect_env, "get_pretty_env_info", lambda: calls.append(1) or "REPORT 1")
    collect_env_info.cache_clear()
    for name in ("a", "b"):
        run_train(sim_args(tmp_path / name, trainer="ZeroshotCLIP"))
    collect_env_info.cache_clear()  # later tests collect the real report
    assert len(calls) == 1
    for name in ("a", "b"):
        assert "** System info **\nREPORT 1\n        Pillow (" in read_log(tmp_path / name)


def test_git_commit_marks_changes_and_never_fails(tmp_path, monkeypatch):
    assert git_commit(tmp_path).startswith("unknown")  # not a checkout
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("a")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (tmp_path / "untracked.txt").write_text("not part of the code")
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("changed")
    assert git_commit(tmp_path) == head + "+dirty"
    monkeypatch.setenv("PATH", "")  # no git at all
    assert git_commit(tmp_path).startswith("unknown")


def test_scalars_off_by_config_or_without_tensorboard(tmp_path, monkeypatch):
    out = tmp_path / "off"
    cmm_run(out, "TRAIN.TENSORBOARD", False)
    assert (out / "log.txt").is_file() and not (out / "tensorboard").exists()

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    out = tmp_path / "missing"
    cmm_run(out)
    assert not (out / "tensorboard").exists()
    assert len([line for line in read_log(out).splitlines() if line.startswith("TensorBoard scalars are off")]) == 1
    assert coop_parse(read_log(out)) is not None

