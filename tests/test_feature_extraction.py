"""extract_features.py: one pass fills the cache for a list of runs, the same with torchrun over
two processes as in one, and the runs then read everything from the cache."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

import extract_features
from conftest import ROOT, read_log, run_train, tiny_args, write_dtd
from pair_layouts import pascal_sentence
from trainers.features import distributed
from trainers.features.extraction import RunError, extract_for_runs


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """The DTD copy and a Pascal Sentence copy (a paired, retrieval dataset)."""
    root = tmp_path_factory.mktemp("extraction_data")
    write_dtd(root)
    pascal_sentence(root)
    return root


def experiment(tiny_clip, root, out):
    """TipAdapter (seed 1) and CMM (seed 2) at 2 shots with 2 views, and TipAdapter again into
    another folder (a duplicate). Encoding batches of 8 give unequal shards (12 test images: 8 + 4)
    and empty ones (8 training images), CMM's batches of 3 several batches per rank."""
    tip = ["DATASET.NUM_SHOTS", "2", "TRAINER.TIPADAPTER.AUGMENT_EPOCH", "2", "TRAINER.TIPADAPTER.SEARCH_STEP",
           "(4, 4)"]
    cmm = ["DATASET.NUM_SHOTS", "2", "FEATURES.AUG_VIEWS", "2", "OPTIM.MAX_EPOCH", "1", "DATALOADER.TEST.BATCH_SIZE",
           "3", "TRAINER.CMM.TEMPLATES", "custom"]
    return [tiny_args(tiny_clip, root, out / "tip", *tip, trainer="TipAdapter", seed=1),
            tiny_args(tiny_clip, root, out / "cmm", *cmm, trainer="CMM", seed=2),
            tiny_args(tiny_clip, root, out / "tip_again", *tip, trainer="TipAdapter", seed=1)]


def run_process_group(command, env, timeout):
    """``(returncode, stdout, stderr)`` of ``command``; on timeout its whole process group (torchrun
    and its workers) is killed, so a hung collective cannot outlive the test."""
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{stderr[-3000:]}")
    return proc.returncode, stdout, stderr


def entries(cache_root):
    """Every cache entry file, by its path under the cache root, loaded."""
    found = {}
    for folder, _, files in os.walk(cache_root):
        for name in files:
            if name.endswith(".pt"):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, cache_root)] = torch.load(path, weights_only=True)
    return found


def test_torchrun_over_two_processes_fills_the_cache_like_one_process(tiny_clip, data_root, tmp_path, monkeypatch):
    runs = experiment(tiny_clip, data_root, tmp_path / "out")
    runs_file = tmp_path / "runs.json"
    runs_file.write_text(json.dumps([[str(a) for a in run] for run in runs]))
    sharded, single = tmp_path / "cache_torchrun", tmp_path / "cache_single"
    env = {**os.environ, "FEWSHOT_CLIP_CACHE": str(sharded), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [torchrun, "--standalone", "--nproc_per_node", "2", "extract_features.py", "--runs", str(runs_file)]
    returncode, stdout, stderr = run_process_group(command, env=env, timeout=240)
    assert returncode == 0, stderr[-3000:]
    assert stdout.count("Feature extraction on 2 processes: 2 run(s) prepared, 0 skipped, 1 duplicate(s)") == 1

    monkeypatch.setenv("FEWSHOT_CLIP_CACHE", str(single))
    counts = extract_for_runs(runs, echo=False)
    assert (counts["prepared"], counts["skipped"], counts["duplicates"]) == (2, 0, 1)
    assert counts["encoded"] > 0
    expected, got = entries(single), entries(sharded)
    assert sorted(got) == sorted(expected)
    assert len(expected) == 7  # prompts, test, val (both seeds sample all of it), 2 seeds x 2 views
    for name, entry in expected.items():
        assert got[name].keys() == entry.keys(), name
        for key, value in entry.items():
            if torch.is_tensor(value):
                assert torch.equal(got[name][key], value), name
            else:
                assert got[name][key] == value, (name, key)

    monkeypatch.setenv("FEWSHOT_CLIP_CACHE", str(sharded))
    for run, folder in zip(runs[:2], ("tip", "cmm")):
        run_train(run)
        assert "0 miss(es), 0 item(s) encoded" in read_log(tmp_path / "out" / folder), folder


SMALL = ["DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1", "FEATURES.AUG_VIEWS", "2"]
EVERY_TRAINER = {  # a run of each trainer reading every kind of feature it can (views, val, train)
    "ZeroshotCLIP": [],
    "LinearProbe": ["TRAINER.LINEARPROBE.NUM_STEP", "1", "TRAINER.LINEARPROBE.C_GRID", "[1.0]"],
    "CLIPAdapter": ["TRAINER.CLIPADAPTER.NUM_VIEWS", "3", "TEST.FINAL_MODEL", "best_val"],
    "TipAdapterF": ["TRAINER.TIPADAPTER.AUGMENT_EPOCH", "2", "TRAINER.TIPADAPTER.SEARCH_STEP", "(2, 2)",
                    "TRAINER.TIPADAPTER.EPOCHS", "1", "TEST.FINAL_MODEL", "best_val"],
    "CMM": ["TRAINER.CMM.SEARCH", "True", "TRAINER.CMM.SEARCH_ALPHA", "[1.0]", "TRAINER.CMM.SEARCH_LAMBDA", "[1.0]"],
    "FLEXCLIP": ["TRAINER.FLEXCLIP.STAGE1_STEPS", "2", "TRAINER.FLEXCLIP.N_CRITIC", "1",
                 "TRAINER.FLEXCLIP.HIDDEN", "16", "TRAINER.FLEXCLIP.PROJ_HIDDEN", "16"],
    "CoOp": ["TRAINER.COOP.FEATURE_VIEWS", "2", "TRAINER.COOP.N_CTX", "2"],
}


@pytest.mark.parametrize(("trainer", "dataset"), [*((t, "dtd") for t in EVERY_TRAINER),
                                                  ("ZeroshotCLIP", "pascal_sentence"), ("FLEXCLIP", "pascal_sentence")])
def test_every_trainer_then_reads_only_prepared_features(trainer, dataset, tiny_clip, data_root, tmp_path):
    args = tiny_args(tiny_clip, data_root, tmp_path / "run", *SMALL, *EVERY_TRAINER[trainer], trainer=trainer)
    args[args.index("--dataset-config-file") + 1] = str(ROOT / f"configs/datasets/{dataset}.yaml")
    assert extract_for_runs([args], echo=False)["misses"] > 0
    run_train(args)
    assert "0 miss(es), 0 item(s) encoded" in read_log(tmp_path / "run")


def test_gather_returns_the_single_process_order_for_unequal_shards(monkeypatch):
    """Each simulated rank computes its batches; the padded shards interleave back in order."""
    for world in (2, 3):
        for num_items, batch_size in ((10, 3), (7, 4), (2, 4)):
            items = torch.arange(num_items * 2.0).view(num_items, 2)
            monkeypatch.setattr(distributed, "world_size", lambda world=world: world)
            longest = distributed.num_batches(distributed.num_batches(num_items, batch_size), world) * batch_size
            shards = []
            for rank in range(world):
                monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
                mine = [items[b.start:b.stop] for b in distributed.my_batches(num_items, batch_size)]
                shard = torch.full((longest, 2), -1.0)
                local = torch.cat(mine) if mine else shard[:0]
                shard[:len(local)] = local
                shards.append(shard)
            assert torch.equal(distributed.interleave(shards, num_items, batch_size), items)


def test_single_process_gather_is_a_concatenation():
    chunks = [torch.ones(2, 3, 4), torch.zeros(2, 1, 4)]
    assert torch.equal(distributed.gather_batches(chunks, 4, 3, dim=1), torch.cat(chunks, 1))


def test_a_trainer_that_encodes_while_training_is_skipped_with_a_note(tiny_clip, dtd_root, tmp_path, capsys):
    coop = tiny_args(tiny_clip, dtd_root, tmp_path / "coop", trainer="CoOp")
    counts = extract_features.main(coop)  # the one-run command line
    assert (counts["prepared"], counts["skipped"], counts["encoded"]) == (0, 1, 0)
    out = capsys.readouterr().out
    assert "run 1 of 1" in out and "skipped, CoOp is not feature-level" in out
    assert "0 run(s) prepared, 1 skipped" in out


def test_an_evaluation_run_prepares_only_what_it_evaluates(tiny_clip, dtd_root, tmp_path):
    run = tiny_args(tiny_clip, dtd_root, tmp_path / "tip", "DATASET.NUM_SHOTS", "2", flags=["--eval-only"],
                    trainer="TipAdapter")
    counts = extract_for_runs([run], echo=False)
    assert (counts["prepared"], counts["misses"], counts["encoded"]) == (1, 2, 12 + 4)  # test images, prompts


def test_a_bad_run_fails_naming_it_before_anything_is_encoded(tiny_clip, dtd_root, tmp_path):
    good = tiny_args(tiny_clip, dtd_root, tmp_path / "a")
    bad = tiny_args(tiny_clip, dtd_root, tmp_path / "b", "TRAINER.NO_SUCH_KEY", "1")
    with pytest.raises(RunError, match=r"^run 2 of 2 \[.*TRAINER\.NO_SUCH_KEY"):
        extract_for_runs([good, bad], echo=False)
    assert not os.path.exists(os.environ["FEWSHOT_CLIP_CACHE"])


def test_a_simulated_run_is_skipped_it_generates_its_features(tmp_path, capsys):
    """The simulated benchmarks serve generated features: nothing to encode or cache, so the
    extraction phase (reproduce's, or extract_features.py's) skips their runs in well under a second."""
    argv = ["--seed", "1", "--trainer", "CMM", "--dataset-config-file", str(ROOT / "configs/datasets/simulated.yaml"),
            "--config-file", str(ROOT / "configs/trainers/CMM/sim.yaml"), "DATASET.NUM_SHOTS", "2"]
    counts = extract_for_runs([argv])
    assert (counts["prepared"], counts["skipped"], counts["encoded"]) == (0, 1, 0)
    assert "skipped, Simulated generates its features when it runs (nothing to cache)" in capsys.readouterr().out
