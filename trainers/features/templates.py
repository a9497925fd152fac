"""Zero-shot prompt templates: CoOp's per-dataset template and the ImageNet prompt ensemble."""

CUSTOM_TEMPLATES = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
}
DEFAULT_TEMPLATE = "a photo of a {}."

# CoOp's IMAGENET_TEMPLATES_SELECT: the 7-template ensemble of the CLIP paper's ImageNet notebook.
IMAGENET_ENSEMBLE = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
]


def custom_template(dataset_name):
    """The dataset's CoOp template ("a photo of a {}." for datasets CoOp does not list)."""
    return CUSTOM_TEMPLATES.get(dataset_name, DEFAULT_TEMPLATE)


def templates_for(dataset_name, mode):
    """``custom``: the dataset's template; ``ensemble``: CoOp's ZeroshotCLIP2 set, i.e. the 7
    ImageNet templates, plus the dataset's own template for every dataset but ImageNet."""
    if mode == "custom":
        return [custom_template(dataset_name)]
    if mode == "ensemble":
        extra = [] if dataset_name == "ImageNet" else [custom_template(dataset_name)]
        return IMAGENET_ENSEMBLE + extra
    raise ValueError(f"template mode must be custom or ensemble, got {mode!r}")


def resolve_templates(dataset_name, setting, key):
    """``(mode, templates)`` for a TEMPLATES setting of the Tip-Adapter family (Tip-Adapter, GDA,
    LP++), whose codes use the 7 templates on ImageNet and the dataset's template elsewhere: ``""``
    is that choice, ``custom`` / ``ensemble`` as ``templates_for``; ``key`` names the setting in
    the error."""
    mode = setting or ("ensemble" if dataset_name == "ImageNet" else "custom")
    if mode not in ("custom", "ensemble"):
        raise ValueError(f"{key} must be custom, ensemble or '', got {mode!r}")
    return mode, templates_for(dataset_name, mode)


def format_prompt(template, classname):
    """CoOp: underscores in class names become spaces."""
    return template.format(classname.replace("_", " "))
