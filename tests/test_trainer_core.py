"""The training core with a small real trainer (a linear head on simulated features):
Dassl's log lines and checkpoint layout, exact resume after an interruption, eval-only reload."""
import os
import re

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from conftest import ROOT, read_log, run_train
from trainers.core.lr_scheduler import build_lr_scheduler
from trainers.core.optim import build_optimizer
from trainers.core.registry import TRAINER_REGISTRY
from trainers.features.feature_trainer import FeatureTrainer


@TRAINER_REGISTRY.register("LinearHeadForTests")
class LinearHead(FeatureTrainer):
    """Cross-entropy on a linear head over normalised frozen features."""

    def build_model(self):
        data = self.split_features("train")
        self.head = torch.nn.Linear(data.features.shape[1], self.num_classes)
        optim = build_optimizer(self.head, self.cfg.OPTIM)
        self.register_model("head", self.head, optim, build_lr_scheduler(optim, self.cfg.OPTIM))
        self.train_loader_x = DataLoader(TensorDataset(data.features, data.labels),
                                         batch_size=self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE, shuffle=True)

    def forward_backward(self, batch):
        features, labels = batch
        logits = self.model_inference(features)
        loss = F.cross_entropy(logits, labels)
        self.model_backward_and_update(loss)
        return {"loss": loss.item(), "acc": 100.0 * (logits.argmax(1) == labels).float().mean().item()}

    def model_inference(self, features):
        return self.head(F.normalize(features, dim=-1))


def sim_args(out, *opts, flags=(), seed=1):
    return [*flags, "--root", "", "--seed", seed, "--trainer", "LinearHeadForTests",
            "--dataset-config-file", ROOT / "configs/datasets/simulated.yaml", "--output-dir", out,
            "DATASET.NUM_SHOTS", "4", "OPTIM.NAME", "sgd", "OPTIM.LR", "0.5", "OPTIM.MAX_EPOCH", "4",
            "OPTIM.LR_SCHEDULER", "cosine", "DATALOADER.TRAIN_X.BATCH_SIZE", "32", "TRAIN.PRINT_FREQ", "2", *opts]


def head_weights(out, epoch):
    return torch.load(os.path.join(out, "head", f"model.pth.tar-{epoch}"), weights_only=True)["state_dict"]


def test_checkpoints_and_log_lines_follow_dassl(tmp_path):
    out = tmp_path / "run"
    run_train(sim_args(out))
    assert sorted(os.listdir(out / "head")) == ["checkpoint", "model.pth.tar-4"]
    assert (out / "head" / "checkpoint").read_text() == "model.pth.tar-4\n"
    log = read_log(out)
    assert re.search(r"^epoch \[1/4\] batch \[2/4\] time \d+\.\d{3} \(\d+\.\d{3}\) data \d+\.\d{3} \(\d+\.\d{3}\) "
                     r"loss \d+\.\d{4} \(\d+\.\d{4}\) acc \d+\.\d{4} \(\d+\.\d{4}\) lr 5\.0000e-01 eta \d+:\d\d:\d\d$",
                     log, re.M)
    assert "Finish training\nDeploy the last-epoch model\nEvaluate on the *test* set\n=> result" in log


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    run_train(sim_args(straight, "TRAIN.CHECKPOINT_FREQ", "1"))

    interrupted = tmp_path / "interrupted"
    real_after_epoch = LinearHead.after_epoch

    def crash_after_second_epoch(self):
        real_after_epoch(self)
        if self.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(LinearHead, "after_epoch", crash_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_train(sim_args(interrupted, "TRAIN.CHECKPOINT_FREQ", "1"))
    monkeypatch.setattr(LinearHead, "after_epoch", real_after_epoch)
    run_train(sim_args(interrupted, "TRAIN.CHECKPOINT_FREQ", "1"))

    assert not [p for p in os.listdir(interrupted) if p.startswith("log.txt-")]  # a dead log.txt is continued
    resumed = read_log(interrupted).split("===== resumed ")
    assert len(resumed) == 2 and "Found checkpoint at" in resumed[1]
    for key, value in head_weights(straight, 4).items():
        assert torch.equal(value, head_weights(interrupted, 4)[key]), key


def test_eval_only_reloads_to_the_same_accuracy(tmp_path):
    out = tmp_path / "run"
    trainer = run_train(sim_args(out))
    trained_acc = trainer.test()
    evaluated = run_train(sim_args(tmp_path / "eval", flags=["--eval-only", "--model-dir", out, "--load-epoch", "4"]))
    assert evaluated.test() == trained_acc
    assert "Load " + str(out / "head" / "model.pth.tar-4") in read_log(tmp_path / "eval")


def test_best_val_selects_on_val_and_deploys_it(tmp_path):
    out = tmp_path / "run"
    run_train(sim_args(out, "TEST.FINAL_MODEL", "best_val"))
    log = read_log(out)
    assert log.count("Evaluate on the *val* set") == 4
    assert "Deploy the model with the best val performance" in log
    assert (out / "head" / "model-best.pth.tar").is_file()


def test_diverging_loss_stops_with_a_clear_error(tmp_path):
    with pytest.raises(FloatingPointError, match="training diverged"):
        run_train(sim_args(tmp_path / "run", "OPTIM.LR", "1e38"))


def test_macro_f1_is_scikit_learns_to_the_bit():
    """The evaluator's macro-F1 (written out so the run core needs no scikit-learn) equals
    ``f1_score(average="macro", labels=unique(y_true))``, also with classes never predicted,
    predictions of classes absent from y_true, and one class."""
    import numpy as np
    from sklearn.metrics import f1_score

    from trainers.core.evaluator import macro_f1

    rng = np.random.default_rng(0)
    cases = [(rng.integers(0, 37, 500), rng.integers(0, 40, 500)), ([0, 0, 2, 2, 5], [0, 1, 2, 7, 7]), ([3, 3], [3, 3])]
    for y_true, y_pred in cases:
        expected = f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))
        assert macro_f1(y_true, y_pred) == expected
