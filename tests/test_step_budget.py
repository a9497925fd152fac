"""OPTIM.MAX_STEPS: the mini-batch trainers on cached views train as many whole epochs as fit in
the budget, with their schedule over those; 0 (the default) and a budget the recipe fits in leave
the run as it was; every other trainer refuses a budget instead of ignoring it; a budgeted run says so in its
provenance, and a table never compares it with a published row."""
import json
import re
from dataclasses import replace

import pytest
import torch

from conftest import ROOT, read_log, run_train
from trainers.core.lr_scheduler import lr_at_epoch

BUDGETED = {"CMM": "cmm", "CLIPAdapter": "clip_adapter", "TipAdapterF": "tip_adapter", "CLAP": "zs_linear_probe",
            "ZSLP": "zs_linear_probe", "FLEXCLIP": "stage2"}  # trainer -> model name


def sim_args(out, trainer, *opts, flags=()):
    return [*flags, "--root", "", "--seed", 1, "--trainer", trainer, "--output-dir", out,
            "--dataset-config-file", ROOT / "configs/datasets/simulated.yaml",
            "--config-file", ROOT / f"configs/trainers/{trainer}/sim.yaml", "DATASET.NUM_SHOTS", 2,
            "DATASET.SIMULATED.NUM_CLASSES", 8, "OPTIM.MAX_EPOCH", 6, *opts]  # 6 epochs: a short recipe


def final_accuracy(out):
    return float(re.search(r"\* accuracy: ([\d.]+)%", read_log(out).split("Evaluate on the *test* set")[-1])[1])


@pytest.mark.parametrize("trainer", sorted(BUDGETED))
def test_a_budget_trains_whole_epochs_within_it_and_ends_its_schedule(tmp_path, trainer):
    recipe = run_train(sim_args(tmp_path / "recipe", trainer, "TEST.NO_TEST", True))
    batches, epochs = len(recipe.train_loader_x), recipe.max_epoch
    assert epochs > 3, "the recipe must be longer than the budget below"
    budget = 3 * batches + batches - 1  # 3 whole epochs fit, a 4th does not
    capped = run_train(sim_args(tmp_path / "capped", trainer, "TEST.NO_TEST", True, "OPTIM.MAX_STEPS", budget))
    log = read_log(tmp_path / "capped")
    assert capped.max_epoch == 3
    assert f"Step budget: 3 epoch(s) x {batches} batches = {3 * batches} steps (OPTIM.MAX_STEPS {budget}" in log
    assert f"epoch [3/3] batch [{batches}/{batches}]" in log and "epoch [4/" not in log
    sched = capped._scheds[BUDGETED[trainer]]
    if capped.lr_step_per_batch:  # CMM, Tip-Adapter-F: a cosine over the budgeted steps ran to its end
        assert sched.last_epoch == 3 * batches and capped.get_current_lr() == pytest.approx(0.0, abs=1e-12)
    else:  # CLIP-Adapter, CLAP, ZS-LP, FLEX-CLIP's stage 2: Dassl's per-epoch schedule as if MAX_EPOCH were 3
        optim_cfg = capped.cfg.OPTIM.clone()
        optim_cfg.defrost()
        optim_cfg.MAX_EPOCH = 3
        assert sched.last_epoch == 3
        assert capped.get_current_lr() == pytest.approx(lr_at_epoch(optim_cfg, optim_cfg.LR, 3), rel=1e-12)
        assert capped.get_current_lr() != pytest.approx(lr_at_epoch(capped.cfg.OPTIM, optim_cfg.LR, 3))


def test_flex_clip_retrieval_budgets_stage_2_over_the_real_and_pseudo_pairs(tmp_path):
    def args(out, *opts):
        return ["--root", "", "--seed", 1, "--trainer", "FLEXCLIP", "--output-dir", out,
                "--dataset-config-file", ROOT / "configs/datasets/simulated_pairs.yaml",
                "--config-file", ROOT / "configs/trainers/FLEXCLIP/sim.yaml", "DATASET.NUM_SHOTS", 1,
                "TRAINER.FLEXCLIP.STAGE1_STEPS", 5, "OPTIM.MAX_EPOCH", 6, "TEST.NO_TEST", True, "TRAIN.PRINT_FREQ", 1,
                *opts]

    batches = len(run_train(args(tmp_path / "recipe")).train_loader_x)
    capped = run_train(args(tmp_path / "capped", "OPTIM.MAX_STEPS", 4 * batches - 1))
    assert capped.max_epoch == 3 and len(capped.train_loader_x) == batches
    assert f"epoch [3/3] batch [{batches}/{batches}]" in read_log(tmp_path / "capped")


@pytest.mark.parametrize("trainer", sorted(BUDGETED))
def test_no_budget_or_one_the_recipe_fits_in_changes_nothing(tmp_path, trainer):
    recipe = run_train(sim_args(tmp_path / "recipe", trainer))
    roomy = run_train(sim_args(tmp_path / "roomy", trainer, "OPTIM.MAX_STEPS", 10 ** 6))
    assert "Step budget" not in read_log(tmp_path / "roomy") and roomy.max_epoch == recipe.max_epoch
    name = BUDGETED[trainer]
    trained, again = recipe._models[name].state_dict(), roomy._models[name].state_dict()
    assert trained.keys() == again.keys() and all(torch.equal(trained[k], again[k]) for k in trained)
    assert final_accuracy(tmp_path / "roomy") == final_accuracy(tmp_path / "recipe")


@pytest.mark.parametrize("trainer", ["LinearProbe", "LPPlusPlus", "ZeroshotCLIP"])
def test_a_trainer_without_a_budget_refuses_one(tmp_path, trainer):
    with pytest.raises(ValueError, match=f"{trainer} has no step budget: OPTIM.MAX_STEPS must be 0 for it"):
        run_train(["--root", "", "--trainer", trainer, "--output-dir", tmp_path,
                   "--dataset-config-file", ROOT / "configs/datasets/simulated.yaml", "OPTIM.MAX_STEPS", 100])
    assert not (tmp_path / "log.txt").exists() or "Finish training" not in read_log(tmp_path)


def test_a_negative_budget_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="OPTIM.MAX_STEPS must be >= 0"):
        run_train(sim_args(tmp_path, "CMM", "OPTIM.MAX_STEPS", -5))


def test_the_refusal_names_exactly_the_trainers_that_honour_a_budget():
    from trainers.core.registry import TRAINER_REGISTRY

    honouring = sorted(cls.__name__ for cls in TRAINER_REGISTRY.classes() if cls.step_budget)
    assert honouring == sorted(BUDGETED)
    source = (ROOT / "trainers/core/trainer_base.py").read_text()
    assert "(CMM, CLIPAdapter, TipAdapterF, CLAP, ZSLP, FLEXCLIP's stage 2)" in source


def test_a_budgeted_run_is_recorded_and_never_compared_with_a_published_row(tmp_path):
    from reports.provenance import DIFFERS, CellProvenance, caveats_of, read_provenance
    from reports.published import PublishedValue

    recipe = run_train(sim_args(tmp_path / "recipe", "CMM"))
    batches = len(recipe.train_loader_x)
    run_train(sim_args(tmp_path / "budget", "CMM", "OPTIM.MAX_STEPS", 2 * batches))
    record = json.loads((tmp_path / "budget" / "provenance.json").read_text())
    assert record["step_budget"] == {"max_steps": 2 * batches, "epochs": 2, "recipe_epochs": 6,
                                     "steps": 2 * batches, "recipe_steps": 6 * batches}
    assert json.loads((tmp_path / "recipe" / "provenance.json").read_text())["step_budget"] is None
    text = f"OPTIM.MAX_STEPS {2 * batches} (2 of 6 epochs)"
    assert f"Provenance: step budget {text}: not the published recipe" in read_log(tmp_path / "budget")
    assert "Provenance: step budget" not in read_log(tmp_path / "recipe")
    run_train(sim_args(tmp_path / "eval", "CMM", flags=["--eval-only", "--model-dir", tmp_path / "budget"]))
    assert json.loads((tmp_path / "eval" / "provenance.json").read_text())["step_budget"] == record["step_budget"]

    budgeted, plain = read_provenance(tmp_path / "budget"), read_provenance(tmp_path / "recipe")
    assert (budgeted.budget, plain.budget) == (text, "")
    # as if on a published split (the simulated one is generated): only the budget may stand in the way
    budgeted, plain = replace(budgeted, origin="published"), replace(plain, origin="published")
    published = PublishedValue("CMM", "sim", "simulated", 2, 80.0, "a paper", "CMM", protocol="strict")
    assert caveats_of(CellProvenance.of([plain]), published) == []
    assert caveats_of(CellProvenance.of([budgeted]), published) == [
        (DIFFERS, f"trained under a step budget ({text}), not the published recipe's epochs")]
    mixed = CellProvenance.of([budgeted, plain])
    assert caveats_of(mixed, None) == [
        (DIFFERS, f"seeds trained under different step budgets (the recipe's epochs, {text})")]
    assert mixed.text() == f"published, strict; recipe epochs; budget {text}"
