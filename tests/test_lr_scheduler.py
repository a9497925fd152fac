"""Per-epoch learning rates equal Dassl's (warm-up wrapper around torch's schedulers)."""
import math

import pytest
import torch

from trainers.core.config import get_cfg_default
from trainers.core.lr_scheduler import build_lr_scheduler, lr_at_epoch


def optim_cfg(**overrides):
    cfg = get_cfg_default().OPTIM
    cfg.merge_from_list([x for kv in overrides.items() for x in kv])
    return cfg


def lrs_over_epochs(cfg, base_lr=0.002):
    """The learning rate in effect during each epoch when stepping once per epoch."""
    param = torch.nn.Parameter(torch.zeros(1))
    optim = torch.optim.SGD([param], lr=base_lr)
    sched = build_lr_scheduler(optim, cfg)
    seen = []
    for _ in range(cfg.MAX_EPOCH):
        seen.append(optim.param_groups[0]["lr"])
        optim.step()
        sched.step()
    return seen


def test_coop_schedule_constant_warmup_then_cosine_recounted():
    cfg = optim_cfg(LR_SCHEDULER="cosine", MAX_EPOCH=10, WARMUP_EPOCH=1, WARMUP_TYPE="constant",
                    WARMUP_CONS_LR=1e-5)
    # Dassl: epoch 0 at the constant rate; epoch e >= 1 at torch's cosine schedule step e - 1.
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.002)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=10)
    expected = [1e-5]
    for _ in range(9):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        cosine.step()
    assert lrs_over_epochs(cfg) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_linear_warmup_and_step_schedules():
    cfg = optim_cfg(LR_SCHEDULER="single_step", STEPSIZE=(3,), GAMMA=0.1, MAX_EPOCH=8, WARMUP_EPOCH=2,
                    WARMUP_TYPE="linear", WARMUP_MIN_LR=1e-4)
    assert [lr_at_epoch(cfg, 1.0, e) for e in range(8)] == pytest.approx(
        [1e-4, 0.5, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1])
    cfg = optim_cfg(LR_SCHEDULER="multi_step", STEPSIZE=(2, 4), GAMMA=0.5, MAX_EPOCH=6)
    assert [lr_at_epoch(cfg, 1.0, e) for e in range(6)] == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])


def test_no_warmup_cosine_is_the_plain_formula():
    cfg = optim_cfg(LR_SCHEDULER="cosine", MAX_EPOCH=4)
    assert lrs_over_epochs(cfg, 1.0) == pytest.approx([0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])


def test_unknown_scheduler_is_rejected():
    with pytest.raises(ValueError, match="OPTIM.LR_SCHEDULER must be one of"):
        lrs_over_epochs(optim_cfg(LR_SCHEDULER="poly"))
