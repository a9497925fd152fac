"""Image transforms from Dassl's ``INPUT.*`` keys, each with a description the feature cache
keys on (a changed size, interpolation, normalisation or augmentation means new features)."""
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

INTERPOLATION = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


def _interpolation(input_cfg):
    try:
        return INTERPOLATION[input_cfg.INTERPOLATION]
    except KeyError:
        raise ValueError(f"INPUT.INTERPOLATION must be one of {list(INTERPOLATION)}, "
                         f"got {input_cfg.INTERPOLATION!r}") from None


def _tensor_steps(input_cfg):
    steps = [T.ToTensor()]
    if "normalize" in input_cfg.TRANSFORMS:
        steps.append(T.Normalize(mean=input_cfg.PIXEL_MEAN, std=input_cfg.PIXEL_STD))
    return steps


def _describe(input_cfg, head):
    norm = (f"mean={list(input_cfg.PIXEL_MEAN)},std={list(input_cfg.PIXEL_STD)}"
            if "normalize" in input_cfg.TRANSFORMS else "none")
    size = "x".join(str(s) for s in input_cfg.SIZE)
    return f"{head};size={size};interp={input_cfg.INTERPOLATION};normalize={norm}"


def eval_transform(input_cfg):
    """Dassl's test transform: resize the short side to max(SIZE), center crop, tensor, normalise."""
    size = tuple(input_cfg.SIZE)
    steps = [T.Resize(max(size), interpolation=_interpolation(input_cfg)), T.CenterCrop(size)]
    return T.Compose(steps + _tensor_steps(input_cfg)), _describe(input_cfg, "eval:resize+centercrop")


def augment_transform(input_cfg, scale, flip):
    """RandomResizedCrop(SIZE, scale) + optional horizontal flip (Tip-Adapter's cache views)."""
    size = tuple(input_cfg.SIZE)
    steps = [T.RandomResizedCrop(size, scale=tuple(scale), interpolation=_interpolation(input_cfg))]
    if flip:
        steps.append(T.RandomHorizontalFlip(p=0.5))
    head = f"augment:rrcrop(scale={tuple(scale)})" + ("+flip" if flip else "")
    return T.Compose(steps + _tensor_steps(input_cfg)), _describe(input_cfg, head)
