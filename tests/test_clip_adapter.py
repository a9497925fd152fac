"""CLIPAdapter: the original's module and residual mix, what it trains (the adapter only), gains
over zero-shot, reloading and evaluating on other classes, the scripts, and an image-dataset run."""
import re

import torch
import torch.nn.functional as F

from conftest import RESULT_BLOCK, coop_parse, read_log, run_train, tiny_args
from methods.zero_shot import class_prototypes
from test_linear_probe import SHOTS, backbone_configs, check_eval_only_runs, forwarded_commands, sim_args

FAST = ("OPTIM.MAX_EPOCH", "30")  # enough epochs to see the loss fall
LOSS_LINE = re.compile(r"^epoch \[(\d+)/\d+\] batch \[\d+/\d+\] .* loss [\d.]+ \(([\d.]+)\)", re.MULTILINE)


def adapter_by_hand(trainer, features, ratio):
    """ratio * relu(relu(x W1^T) W2^T) + (1 - ratio) * x, from the adapter's two weight matrices."""
    w1, w2 = trainer.adapter.fc[0].weight, trainer.adapter.fc[2].weight
    return ratio * torch.relu(torch.relu(features @ w1.t()) @ w2.t()) + (1 - ratio) * features


def test_residual_mix_uses_the_configured_ratio(tmp_path):
    zero_shot = run_train(sim_args(tmp_path / "zs", "ZeroshotCLIP", flags=["--eval-only"]))
    features = zero_shot.split_features("test").features
    for ratio in (0.0, 0.5):
        trainer = run_train(sim_args(tmp_path / str(ratio), "CLIPAdapter", SHOTS, "TRAINER.CLIPADAPTER.RATIO", ratio,
                                     flags=["--no-train"]))
        assert trainer.adapter.fc[0].weight.shape == (128 // 4, 128)  # the bottleneck: d / REDUCTION
        with torch.no_grad():
            logits = trainer.model_inference(features)
            mixed = adapter_by_hand(trainer, features, ratio)
        expected = 100.0 * F.normalize(mixed, dim=-1) @ zero_shot.prototypes.t()
        assert torch.allclose(logits, expected, atol=1e-4)
        if ratio == 0.0:
            assert torch.equal(logits, zero_shot.model_inference(features))  # ratio 0 is zero-shot CLIP
        else:
            assert not torch.allclose(logits, zero_shot.model_inference(features), atol=1e-2)


def epoch_losses(log):
    """The running average loss at the last printed batch of each epoch."""
    last = {}
    for epoch, avg in LOSS_LINE.findall(log):
        last[int(epoch)] = float(avg)
    return [last[e] for e in sorted(last)]


def test_trains_only_the_adapter_and_lowers_the_loss(tmp_path):
    initial = run_train(sim_args(tmp_path / "init", "CLIPAdapter", SHOTS, *FAST, flags=["--no-train"]))
    trainer = run_train(sim_args(tmp_path / "run", "CLIPAdapter", SHOTS, *FAST))
    optim = trainer._optims["clip_adapter"]
    assert [p for g in optim.param_groups for p in g["params"]] == list(trainer.adapter.parameters())
    assert optim.param_groups[0]["initial_lr"] == 0.002 and optim.param_groups[0]["weight_decay"] == 5e-4
    text = trainer.class_text_features(["a photo of a {}."])
    assert torch.equal(trainer.prototypes, class_prototypes(text)) and not trainer.prototypes.requires_grad
    for split in ("train", "test"):
        assert torch.equal(trainer.split_features(split).features, initial.split_features(split).features)
    for before, after in zip(initial.adapter.parameters(), trainer.adapter.parameters()):
        assert not torch.allclose(before, after)
    bank = trainer.train_loader_x.views  # the cached views it trained on: CoOp's crop scale, unchanged
    assert torch.equal(bank, trainer.augmented_train_features(10, scale=(0.08, 1.0)).features)
    features, labels = bank.flatten(0, 1), trainer.train_loader_x.labels.repeat(10)
    with torch.no_grad():
        loss_before = F.cross_entropy(initial.model_inference(features), labels).item()
        loss_after = F.cross_entropy(trainer.model_inference(features), labels).item()
    assert loss_after < loss_before - 0.2
    losses = epoch_losses(read_log(tmp_path / "run"))
    assert len(losses) == 30 and losses[-1] < losses[0]
    assert sorted(p.name for p in (tmp_path / "run" / "clip_adapter").iterdir()) == ["checkpoint", "model.pth.tar-30"]


def test_beats_zero_shot_at_16_shots(tmp_path):
    """Observed with sim.yaml (seeds 1-3): zero-shot 53.4; CLIPAdapter 76.8 / 78.7 / 78.6 at 16 shots
    (54.5 / 55.1 / 55.3 at 1 shot)."""
    zero_shot = run_train(sim_args(tmp_path / "zs", "ZeroshotCLIP", 16, flags=["--eval-only"])).test()
    adapter = run_train(sim_args(tmp_path / "ca", "CLIPAdapter", 16)).test()
    assert adapter > zero_shot + 15.0


def test_eval_only_reload_shift_and_class_subset(tmp_path):
    """Class-agnostic: the prototypes are rebuilt for the evaluated classes, and cosine logits are
    per class, so the 16-class run scores the full model's columns of those classes."""
    run = check_eval_only_runs(tmp_path, "CLIPAdapter", "OPTIM.MAX_EPOCH", "5")
    assert (run / "clip_adapter" / "model.pth.tar-5").is_file()


def test_image_dataset_run_with_the_tiny_clip(tiny_clip, dtd_root, tmp_path):
    out = tmp_path / "dtd" / "CLIPAdapter" / "seed1"
    opts = ("DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "3", "TRAINER.CLIPADAPTER.NUM_VIEWS", "2",
            "INPUT.RRCROP_SCALE", "(0.5, 1.0)")
    trainer = run_train(tiny_args(tiny_clip, dtd_root, out, *opts, trainer="CLIPAdapter"))
    log = read_log(out)
    assert len(RESULT_BLOCK.findall(log)) == 1 and coop_parse(log) == trainer.test()
    assert "Prompts: ['banded texture.'" in log and (out / "clip_adapter" / "model.pth.tar-3").is_file()
    assert trainer.train_loader_x.views.shape == (2, 8, 32)  # 2 cached views of the 4 x 2 images


def test_configs_and_scripts(tmp_path):
    for cfg in backbone_configs("CLIPAdapter").values():
        optim = cfg.OPTIM
        assert (optim.NAME, optim.LR, optim.MAX_EPOCH, optim.LR_SCHEDULER) == ("sgd", 0.002, 200, "cosine")
        assert (optim.WARMUP_EPOCH, optim.WARMUP_TYPE, optim.WARMUP_CONS_LR) == (1, "constant", 1e-5)
        assert cfg.DATALOADER.TRAIN_X.BATCH_SIZE == 32 and cfg.TRAINER.CLIPADAPTER.RATIO == 0.2
    forwarded_commands(tmp_path, "clip_adapter", "CLIPAdapter")
