"""Dassl's per-epoch learning-rate schedules, in closed form.

Dassl wraps torch schedulers in warm-up schedulers whose state holds the wrapped object
(not loadable with ``weights_only=True``). Here the same per-epoch learning rates come from
one pure function, wrapped in a ``LambdaLR`` whose state is plain numbers. With warm-up
(WARMUP_RECOUNT, Dassl's default) epoch ``e < W`` uses the warm-up rate and epoch ``e >= W``
the main schedule at ``e - W``; without recount, at ``e``.
"""
import math

from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR

SCHEDULERS = ("single_step", "multi_step", "cosine")


def main_schedule_factor(optim_cfg, epoch):
    """Multiplier of the base LR at ``epoch`` of the main (post warm-up) schedule."""
    name = optim_cfg.LR_SCHEDULER
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / optim_cfg.MAX_EPOCH))
    stepsize = optim_cfg.STEPSIZE
    if name == "single_step":
        step = stepsize[-1] if isinstance(stepsize, (list, tuple)) else stepsize
        step = optim_cfg.MAX_EPOCH if step <= 0 else step
        return optim_cfg.GAMMA ** (epoch // step)
    if name == "multi_step":
        return optim_cfg.GAMMA ** sum(epoch >= milestone for milestone in stepsize)
    raise ValueError(f"OPTIM.LR_SCHEDULER must be one of {SCHEDULERS}, got {name!r}")


def lr_at_epoch(optim_cfg, base_lr, epoch):
    """The learning rate Dassl uses during ``epoch`` (0-based) for a group with ``base_lr``."""
    warmup = optim_cfg.WARMUP_EPOCH
    if warmup > 0 and epoch < warmup:
        if optim_cfg.WARMUP_TYPE == "constant":
            return optim_cfg.WARMUP_CONS_LR
        if optim_cfg.WARMUP_TYPE == "linear":
            return optim_cfg.WARMUP_MIN_LR if epoch == 0 else base_lr * epoch / warmup
        raise ValueError(f"OPTIM.WARMUP_TYPE must be constant or linear, got {optim_cfg.WARMUP_TYPE!r}")
    if warmup > 0 and optim_cfg.WARMUP_RECOUNT:
        epoch -= warmup
    return base_lr * main_schedule_factor(optim_cfg, epoch)


def build_lr_scheduler(optimizer, optim_cfg):
    """A scheduler to ``step()`` once per epoch, after the epoch (as Dassl trainers do)."""
    main_schedule_factor(optim_cfg, 0)  # validate the name early
    lambdas = [
        (lambda epoch, base=group["lr"]: lr_at_epoch(optim_cfg, base, epoch) / base)
        for group in optimizer.param_groups
    ]
    return LambdaLR(optimizer, lambdas)


def build_iteration_cosine(optimizer, total_steps):
    """Cosine decay over ``total_steps`` optimizer steps, stepped every batch (Tip-Adapter-F, CMM:
    trainers that set ``lr_step_per_batch``)."""
    return CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
