"""Optimizers by Dassl's ``OPTIM.*`` keys."""
import torch

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "radam")


def build_optimizer(params, optim_cfg, lr=None):
    """An optimizer over ``params`` (a module, parameters, or param-group dicts)."""
    if isinstance(params, torch.nn.Module):
        params = [p for p in params.parameters() if p.requires_grad]
    if optim_cfg.STAGED_LR:
        raise ValueError("OPTIM.STAGED_LR is not supported: pass param groups from the trainer instead")
    name, lr, wd = optim_cfg.NAME, lr or optim_cfg.LR, optim_cfg.WEIGHT_DECAY
    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd,
                               dampening=optim_cfg.SGD_DAMPNING, nesterov=optim_cfg.SGD_NESTEROV)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=betas)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=betas)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd,
                                   alpha=optim_cfg.RMSPROP_ALPHA)
    if name == "radam":
        return torch.optim.RAdam(params, lr=lr, weight_decay=wd, betas=betas)
    raise ValueError(f"OPTIM.NAME must be one of {OPTIMIZERS}, got {name!r}")
