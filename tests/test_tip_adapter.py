"""TipAdapter / TipAdapterF: the published formula, a val-only search, gains over zero-shot,
reloading and evaluating on other classes, what Tip-Adapter-F trains, and the selection
protocols (strict: the few-shot val split; full_val: the whole val split, held-out train
images on ImageNet)."""
import math

import pytest
import torch
import torch.nn.functional as F

import datasets.imagenet
from conftest import ROOT, poison_splits, read_log, run_train, split_reads, tiny_args
from coop_layouts import build, eurosat, imagenet
from methods.tip_adapter import TipAdapterHead, build_cache
from test_linear_probe import check_eval_only_runs
from trainers.core.config import get_cfg_default, merge_file
from trainers.features.feature_trainer import LabeledFeatures
from trainers.features.search import selection_features

SHOTS = 4
COARSE = ("TRAINER.TIPADAPTER.SEARCH_STEP", "(40, 10)")  # where the grid itself is not under test (speed)


def sim_args(out, trainer, shots=SHOTS, *opts, dataset="simulated", flags=(), seed=1):
    args = [*flags, "--root", "", "--seed", seed, "--trainer", trainer,
            "--dataset-config-file", ROOT / f"configs/datasets/{dataset}.yaml", "--output-dir", out]
    if trainer != "ZeroshotCLIP":
        args += ["--config-file", ROOT / f"configs/trainers/{trainer}/sim.yaml"]
    return args + ["DATASET.NUM_SHOTS", shots, *opts]


def published_logits(f, text, keys, values, alpha, beta, scale=100.0):
    """logits = 100 * f @ W^T + alpha * exp(-beta * (1 - f @ keys^T)) @ values, f normalised
    (``scale``: the backbone's logit scale, which is 100 for OpenAI CLIP and the simulated benchmark)."""
    return scale * f @ text.t() + alpha * torch.exp(-beta * (1 - f @ keys.t())) @ values


def accuracy(logits, labels):
    return 100.0 * (logits.argmax(1) == labels).float().mean().item()


def independent_cache(trainer, template="a photo of a {}."):
    """Keys, values and text weights recomputed from the trainer's raw cached features."""
    views = trainer.augmented_train_features(10, scale=(0.5, 1.0))
    keys = views.features.mean(0)
    keys = keys / keys.norm(dim=-1, keepdim=True)
    values = torch.zeros(len(views.labels), trainer.num_classes)
    values[torch.arange(len(views.labels)), views.labels] = 1.0
    text = trainer.class_text_features([template])[:, 0]
    return keys, values, text / text.norm(dim=-1, keepdim=True)


def original_search(f, labels, text, keys, values, scale, search_scale, steps=(200, 20)):
    """Tip-Adapter's search_hp: beta outer, alpha inner, the first strictly better point wins
    (every point scored at once: ``argmax`` returns the first maximum in that order)."""
    betas = torch.tensor([i * (search_scale[0] - 0.1) / steps[0] + 0.1 for i in range(steps[0])])
    alphas = torch.tensor([i * (search_scale[1] - 0.1) / steps[1] + 0.1 for i in range(steps[1])])
    zero_shot = scale * f @ text.t()
    cache = torch.exp(-betas[:, None, None] * (1 - f @ keys.t())) @ values  # [beta, N, C]
    logits = zero_shot + alphas[None, :, None, None] * cache[:, None]  # [beta, alpha, N, C]
    acc = (logits.argmax(-1) == labels).float().mean(-1)
    first = int(acc.flatten().argmax())
    return alphas[first % steps[1]].item(), betas[first // steps[1]].item()


def test_cache_keys_average_raw_features_before_normalising():
    """The original averages encode_image outputs over views, then normalises: a view with a
    larger norm weighs more (normalising each view first would give [0.7071, 0.7071])."""
    views = torch.tensor([[[3.0, 0.0]], [[0.0, 1.0]]])  # 2 views of 1 image
    keys, values = build_cache(views, torch.tensor([1]), num_classes=3)
    assert torch.allclose(keys, torch.tensor([[3.0, 1.0]]) / math.sqrt(10.0))
    assert torch.equal(values, torch.tensor([[0.0, 1.0, 0.0]]))


@pytest.mark.parametrize("case", ["simulated", "tiny_clip"])
def test_training_free_logits_and_search_follow_the_published_code(tmp_path, case, request):
    if case == "simulated":  # fallback settings: init (2, 1), search scale (12, 10)
        trainer = run_train(sim_args(tmp_path / "run", "TipAdapter"))
        template, search_scale, scale = "a photo of a {}.", (12, 10), 100.0
        assert trainer.features.logit_scale == 100.0
    else:  # real image features (not unit-norm: the mean is over raw features), DTD's published (13, 13)
        tiny_clip, root = request.getfixturevalue("tiny_clip"), request.getfixturevalue("dtd_root")
        trainer = run_train(tiny_args(tiny_clip, root, tmp_path / "run", "DATASET.NUM_SHOTS", 4, trainer="TipAdapter"))
        template, search_scale, scale = "{} texture.", (13, 13), trainer.features.logit_scale
        assert trainer.augmented_train_features(10).features.norm(dim=-1).std() > 0.01
    keys, values, text = independent_cache(trainer, template)
    val = trainer.split_features("val")
    best = original_search(F.normalize(val.features, dim=-1), val.labels, text, keys, values, scale, search_scale)
    head = trainer.head
    assert (head.alpha.item(), head.beta.item()) == pytest.approx(best, abs=1e-6)
    test = trainer.split_features("test")
    expected = published_logits(F.normalize(test.features, dim=-1), text, keys, values, *best, scale)
    assert torch.allclose(trainer.model_inference(test.features), expected, atol=1e-4 * scale)
    assert trainer.test() == pytest.approx(accuracy(expected, test.labels))


@pytest.mark.parametrize("trainer_name", ["TipAdapter", "TipAdapterF"])
def test_search_never_reads_test_features(tmp_path, trainer_name):
    def searched(out, garbage):
        trainer = run_train(sim_args(out, trainer_name, SHOTS, "TEST.NO_TEST", "True", *COARSE, flags=["--no-train"]))
        if garbage:
            test = trainer.split_features("test")
            trainer._split_features["test"] = LabeledFeatures(torch.full_like(test.features, math.nan), test.labels)
        asked = []
        split_features = trainer.split_features
        trainer.split_features = lambda split: asked.append(split) or split_features(split)
        trainer.train()
        return trainer.head, asked

    clean, _ = searched(tmp_path / "clean", garbage=False)
    dirty, asked = searched(tmp_path / "nan", garbage=True)
    assert "val" in asked and "test" not in asked
    assert (dirty.alpha.item(), dirty.beta.item()) == (clean.alpha.item(), clean.beta.item())
    assert torch.equal(dirty.keys, clean.keys)


def test_both_beat_zero_shot_at_16_shots_and_fine_tuning_helps(tmp_path):
    """Observed (seeds 1-3): zero-shot 53.4; TipAdapter 75.3 / 74.5 / 75.6; TipAdapterF 83.4 / 82.9 / 82.9."""
    zero_shot = run_train(sim_args(tmp_path / "zs", "ZeroshotCLIP", 16, flags=["--eval-only"])).test()
    tip = run_train(sim_args(tmp_path / "tip", "TipAdapter", 16)).test()
    tip_f = run_train(sim_args(tmp_path / "tipf", "TipAdapterF", 16)).test()
    assert tip > zero_shot + 15.0
    assert tip_f > zero_shot + 22.0
    assert tip_f > tip + 4.0


@pytest.mark.parametrize("trainer_name,final_model", [("TipAdapter", "last_step"), ("TipAdapterF", "last_step"),
                                                      ("TipAdapterF", "best_val")])
def test_eval_only_reload_shift_and_class_subset(tmp_path, trainer_name, final_model):
    check_eval_only_runs(tmp_path, trainer_name, "TEST.FINAL_MODEL", final_model, *COARSE)

def test_fine_tuning_trains_only_the_keys_and_lowers_the_loss(tmp_path):
    trainer = run_train(sim_args(tmp_path / "run", "TipAdapterF", SHOTS, *COARSE))
    keys, values, text = independent_cache(trainer)
    head = trainer.head
    assert torch.equal(head.values, values)
    assert torch.allclose(head.text_prototypes, text, atol=1e-6)
    assert not torch.allclose(head.keys, keys, atol=1e-3)  # the keys moved
    optim, sched = trainer._optims["tip_adapter"], trainer._scheds["tip_adapter"]
    assert [p for g in optim.param_groups for p in g["params"]] == [head.keys]
    assert optim.param_groups[0]["eps"] == 1e-4 and optim.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert sched.T_max == 20 * len(trainer.train_loader_x) == sched.last_epoch  # cosine over every iteration
    # cross-entropy over the whole view bank with the initial alpha / beta, before and after
    views = trainer.augmented_train_features(10)
    initial = TipAdapterHead(head.text_prototypes, 100.0, keys, values, alpha=2.0, beta=1.0)
    trained = TipAdapterHead(head.text_prototypes, 100.0, head.keys.detach(), values, alpha=2.0, beta=1.0)
    with torch.no_grad():
        losses = [F.cross_entropy(h(views.features.flatten(0, 1)), views.labels.repeat(10)).item()
                  for h in (initial, trained)]
    assert losses[1] < 0.9 * losses[0]


def test_published_settings_are_applied_per_dataset_and_overridable(tmp_path, tiny_clip, dtd_root):
    """DTD with the tiny CLIP model end to end; EuroSAT's 100 epochs for Tip-Adapter-F."""
    trainer = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "dtd", "DATASET.NUM_SHOTS", 2,
                                  trainer="TipAdapter"))
    log = read_log(tmp_path / "dtd")
    assert "published for DescribableTextures" in log and "init alpha=2.0" in log
    assert "search scale=(13, 13)" in log and "'{} texture.'" in log
    assert trainer.head.keys.shape[0] == 2 * 4 and "* accuracy:" in log

    eurosat(tmp_path / "data")

    def eurosat_run(out, *opts):
        argv = tiny_args(tiny_clip, tmp_path / "data", tmp_path / out, "DATASET.NUM_SHOTS", 2, *opts,
                         flags=["--no-train"], trainer="TipAdapterF")
        argv[argv.index("--dataset-config-file") + 1] = str(ROOT / "configs/datasets/eurosat.yaml")
        return run_train(argv)

    published = eurosat_run("eurosat")
    assert published.max_epoch == 100 and published.init_alpha == 2.0
    assert max(published.search_grid["beta"]) < 12 <= max(published.search_grid["beta"]) + 12 / 200
    explicit = eurosat_run("explicit", "TRAINER.TIPADAPTER.EPOCHS", 3, "TRAINER.TIPADAPTER.INIT_ALPHA", 0.5,
                           "TRAINER.TIPADAPTER.SEARCH_SCALE", "(4, 2)")
    assert explicit.max_epoch == 3 and explicit.init_alpha == 0.5 and max(explicit.search_grid["alpha"]) < 2


# --- selection protocols (TRAINER.TIPADAPTER.PROTOCOL) ----------------------------------------------
def searched_on(out, trainer_name, protocol, noisy=(), *opts):
    """(alpha, beta) a run chooses, and the splits it read, with the features of the ``noisy``
    splits replaced by noise and random labels before the search."""
    trainer = run_train(sim_args(out, trainer_name, SHOTS, "TRAINER.TIPADAPTER.PROTOCOL", protocol, "TEST.NO_TEST",
                                 "True", *COARSE, *opts, flags=["--no-train"]))
    poison_splits(trainer, noisy, nan=())
    asked = split_reads(trainer)
    trainer.train()
    return (trainer.head.alpha.item(), trainer.head.beta.item()), set(asked)


def test_protocol_decides_which_val_split_the_search_reads(tmp_path):
    """strict reads the few-shot val split only, full_val the whole val split only: noise in
    the splits a protocol does not read leaves its choice unchanged, noise in the one it reads
    changes it; test is never read."""
    strict, strict_asked = searched_on(tmp_path / "s", "TipAdapter", "strict")
    full, full_asked = searched_on(tmp_path / "f", "TipAdapter", "full_val")
    assert "val" in strict_asked and not {"full_val", "test"} & strict_asked
    assert "full_val" in full_asked and not {"val", "test"} & full_asked
    assert searched_on(tmp_path / "s_noisy", "TipAdapter", "strict", ("full_val", "test"))[0] == strict
    assert searched_on(tmp_path / "f_noisy", "TipAdapter", "full_val", ("val", "test"))[0] == full
    assert searched_on(tmp_path / "f_noisy_full", "TipAdapter", "full_val", ("full_val",))[0] != full
    # Tip-Adapter-F: the same search after fine-tuning (its last epoch: nothing else is chosen)
    _, asked = searched_on(tmp_path / "tipf", "TipAdapterF", "full_val", (), "TRAINER.TIPADAPTER.EPOCHS", 1)
    assert "full_val" in asked and not {"val", "test"} & asked


def test_full_val_is_the_whole_val_split_and_is_extracted_and_recorded(tmp_path):
    strict = run_train(sim_args(tmp_path / "s", "TipAdapterF", SHOTS, *COARSE, flags=["--no-train"]))
    full = run_train(sim_args(tmp_path / "f", "TipAdapterF", SHOTS, "TRAINER.TIPADAPTER.PROTOCOL", "full_val",
                              "TEST.FINAL_MODEL", "best_val", *COARSE, flags=["--no-train"]))
    world_val = full.dataset.world.items("val")  # the simulated world's val split, before few-shot sampling
    assert [item.impath for item in full.dataset.full_val] == [item.impath for item in world_val]
    assert len(full.dataset.full_val) == 32 * 16 and len(full.dataset.val) == 32 * min(SHOTS, 4)
    # extract_features.py prepares what feature_splits names: full_val only when the protocol reads it
    full.prepare_features()
    strict.prepare_features()
    assert "full_val" in full._split_features and "full_val" not in strict._split_features
    assert strict.selection_protocol() == {"protocol": "strict",
                                           "selected": {"alpha": "fewshot_val", "beta": "fewshot_val"}}
    # the epoch of a best_val run is chosen on the few-shot val split under either protocol
    assert full.selection_protocol() == {"protocol": "full_val", "selected": {
        "alpha": "full_val", "beta": "full_val", "epoch": "fewshot_val"}}
    fixed = run_train(sim_args(tmp_path / "n", "TipAdapter", SHOTS, "TRAINER.TIPADAPTER.SEARCH", "False",
                               "TRAINER.TIPADAPTER.PROTOCOL", "full_val", flags=["--no-train"]))
    assert fixed.selection_protocol() == {"protocol": "full_val", "selected": {}}
    with pytest.raises(ValueError, match="TRAINER.TIPADAPTER.PROTOCOL"):
        run_train(sim_args(tmp_path / "bad", "TipAdapter", SHOTS, "TRAINER.TIPADAPTER.PROTOCOL", "test"))


def test_protocol_configs():
    for trainer in ("TipAdapter", "TipAdapterF"):
        for backbone in ("rn50", "rn101", "vit_b32", "vit_b16"):
            plain, protocol = get_cfg_default(), get_cfg_default()
            merge_file(plain, ROOT / f"configs/trainers/{trainer}/{backbone}.yaml")
            merge_file(protocol, ROOT / f"configs/trainers/{trainer}/{backbone}_full_val.yaml")
            assert protocol.TRAINER.TIPADAPTER.PROTOCOL == "full_val" and plain.TRAINER.TIPADAPTER.PROTOCOL == "strict"
            protocol.TRAINER.TIPADAPTER.PROTOCOL = "strict"
            assert protocol == plain  # nothing else differs


@pytest.mark.parametrize("trainer_name, key, protocol", [("TipAdapter", "TIPADAPTER", "full_val"),
                                                         ("LinearProbe", "LINEARPROBE", "lpclip")])
def test_imagenet_full_val_is_held_out_train_images_and_test_is_never_searched(tmp_path, tiny_clip, monkeypatch,
                                                                              trainer_name, key, protocol):
    """ImageNet: the originals searched on test; full_val is FULL_VAL_PER_CLASS training images per
    class (fixed whatever the seed; 6 here instead of 50, for speed), the run's few-shot images
    are left out of the search, and noise in the test features changes no choice."""
    monkeypatch.setattr(datasets.imagenet, "FULL_VAL_PER_CLASS", 6)
    imagenet(tmp_path / "data", train_per_class=8)
    lists = [build(tmp_path / "data", "ImageNet", num_shots=2, seed=seed) for seed in (1, 2)]
    held_out = [item.impath for item in lists[0].full_val]
    assert held_out == [item.impath for item in lists[1].full_val]  # one list (one cache entry) for every seed
    assert len(held_out) == 3 * 6 and all("/images/train/" in path for path in held_out)
    assert not {item.impath for item in lists[0].test} & set(held_out)

    def run(out, noisy_test):
        argv = tiny_args(tiny_clip, tmp_path / "data", tmp_path / out, "DATASET.NUM_SHOTS", 2,
                         f"TRAINER.{key}.PROTOCOL", protocol, "TEST.NO_TEST", "True",
                         *(COARSE if key == "TIPADAPTER" else ()), flags=["--no-train"], trainer=trainer_name)
        argv[argv.index("--dataset-config-file") + 1] = str(ROOT / "configs/datasets/imagenet.yaml")
        trainer = run_train(argv)
        if noisy_test:
            test = trainer.split_features("test")
            trainer._split_features["test"] = LabeledFeatures(torch.randn_like(test.features) * 1e3, test.labels)
        asked = []
        split_features = trainer.split_features
        trainer.split_features = lambda split: asked.append(split) or split_features(split)
        trainer.train()
        return trainer, asked

    clean, asked = run("clean", noisy_test=False)
    noisy, _ = run("noisy", noisy_test=True)
    assert "test" not in asked and "full_val" in asked and "val" not in asked
    for name, value in clean.head.state_dict().items():  # alpha / beta and the cache, or C's fitted weights
        assert torch.equal(noisy.head.state_dict()[name], value), name
    searched = selection_features(clean, "full_val")
    few_shot = {item.impath for item in clean.dataset.train_x}
    kept = [item for item in clean.dataset.full_val if item.impath not in few_shot]
    assert few_shot & set(held_out)  # there was something to drop
    assert torch.equal(searched.labels, torch.tensor([item.label for item in kept]))
    assert len(searched.labels) == len(held_out) - len(few_shot & set(held_out))
