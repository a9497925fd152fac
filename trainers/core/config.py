"""The yacs config: Dassl's key names and defaults, our CLIP / FEATURES nodes, and merging
with errors that name the offending key and file.

``get_cfg_default()`` = Dassl defaults + ``extend_cfg`` (our nodes, CoOp's
``DATASET.SUBSAMPLE_CLASSES``, the dataset nodes of ``datasets.dataset_nodes`` and every
trainer's node from ``trainer_nodes``; no dataset or trainer module is imported). Plugin mode
calls ``extend_cfg`` on Dassl's own config instead.
"""
import difflib
import random

import yaml
from yacs.config import CfgNode as CN

from datasets.dataset_nodes import add_dataset_nodes

from .trainer_nodes import add_trainer_nodes


class ConfigError(ValueError):
    """A config file or command-line option names an unknown key or a value of the wrong type."""


def dassl_defaults():
    """The Dassl.pytorch v0.6 defaults that CoOp-style configs set (same names and values)."""
    c = CN()
    c.VERSION = 1
    c.OUTPUT_DIR = "./output"
    c.RESUME = ""
    c.SEED = -1
    c.USE_CUDA = True
    c.VERBOSE = True

    c.INPUT = CN()
    c.INPUT.SIZE = (224, 224)
    c.INPUT.INTERPOLATION = "bilinear"
    c.INPUT.TRANSFORMS = ()
    c.INPUT.NO_TRANSFORM = False
    c.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
    c.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
    c.INPUT.CROP_PADDING = 4
    c.INPUT.RRCROP_SCALE = (0.08, 1.0)
    c.INPUT.CUTOUT_N = 1
    c.INPUT.CUTOUT_LEN = 16
    c.INPUT.GN_MEAN = 0.0
    c.INPUT.GN_STD = 0.15
    c.INPUT.RANDAUGMENT_N = 2
    c.INPUT.RANDAUGMENT_M = 10
    c.INPUT.COLORJITTER_B = 0.4
    c.INPUT.COLORJITTER_C = 0.4
    c.INPUT.COLORJITTER_S = 0.4
    c.INPUT.COLORJITTER_H = 0.1
    c.INPUT.RGS_P = 0.2
    c.INPUT.GB_P = 0.5
    c.INPUT.GB_K = 21

    c.DATASET = CN()
    c.DATASET.ROOT = ""
    c.DATASET.NAME = ""
    c.DATASET.SOURCE_DOMAINS = ()
    c.DATASET.TARGET_DOMAINS = ()
    c.DATASET.NUM_LABELED = -1
    c.DATASET.NUM_SHOTS = -1
    c.DATASET.VAL_PERCENT = 0.1
    c.DATASET.STL10_FOLD = -1
    c.DATASET.CIFAR_C_TYPE = ""
    c.DATASET.CIFAR_C_LEVEL = 1
    c.DATASET.ALL_AS_UNLABELED = False

    c.DATALOADER = CN()
    c.DATALOADER.NUM_WORKERS = 4
    c.DATALOADER.K_TRANSFORMS = 1
    c.DATALOADER.RETURN_IMG0 = False
    for split, sampler in (("TRAIN_X", "RandomSampler"), ("TRAIN_U", "RandomSampler")):
        c.DATALOADER[split] = CN()
        c.DATALOADER[split].SAMPLER = sampler
        c.DATALOADER[split].BATCH_SIZE = 32
        c.DATALOADER[split].N_DOMAIN = 0
        c.DATALOADER[split].N_INS = 16
    c.DATALOADER.TRAIN_U.SAME_AS_X = True
    c.DATALOADER.TEST = CN()
    c.DATALOADER.TEST.SAMPLER = "SequentialSampler"
    c.DATALOADER.TEST.BATCH_SIZE = 32

    c.MODEL = CN()
    c.MODEL.INIT_WEIGHTS = ""
    c.MODEL.BACKBONE = CN()
    c.MODEL.BACKBONE.NAME = ""
    c.MODEL.BACKBONE.PRETRAINED = True
    c.MODEL.HEAD = CN()
    c.MODEL.HEAD.NAME = ""
    c.MODEL.HEAD.HIDDEN_LAYERS = ()
    c.MODEL.HEAD.ACTIVATION = "relu"
    c.MODEL.HEAD.BN = True
    c.MODEL.HEAD.DROPOUT = 0.0

    c.OPTIM = CN()
    c.OPTIM.NAME = "adam"
    c.OPTIM.LR = 0.0003
    c.OPTIM.WEIGHT_DECAY = 5e-4
    c.OPTIM.MOMENTUM = 0.9
    c.OPTIM.SGD_DAMPNING = 0
    c.OPTIM.SGD_NESTEROV = False
    c.OPTIM.RMSPROP_ALPHA = 0.99
    c.OPTIM.ADAM_BETA1 = 0.9
    c.OPTIM.ADAM_BETA2 = 0.999
    c.OPTIM.STAGED_LR = False
    c.OPTIM.NEW_LAYERS = ()
    c.OPTIM.BASE_LR_MULT = 0.1
    c.OPTIM.LR_SCHEDULER = "single_step"
    c.OPTIM.STEPSIZE = (-1,)
    c.OPTIM.GAMMA = 0.1
    c.OPTIM.MAX_EPOCH = 10
    c.OPTIM.WARMUP_EPOCH = -1
    c.OPTIM.WARMUP_TYPE = "linear"
    c.OPTIM.WARMUP_CONS_LR = 1e-5
    c.OPTIM.WARMUP_MIN_LR = 1e-5
    c.OPTIM.WARMUP_RECOUNT = True

    c.TRAIN = CN()
    c.TRAIN.CHECKPOINT_FREQ = 0
    c.TRAIN.PRINT_FREQ = 10
    c.TRAIN.COUNT_ITER = "train_x"

    c.TEST = CN()
    c.TEST.EVALUATOR = "Classification"
    c.TEST.PER_CLASS_RESULT = False
    c.TEST.COMPUTE_CMAT = False
    c.TEST.NO_TEST = False
    c.TEST.SPLIT = "test"
    c.TEST.FINAL_MODEL = "last_step"

    c.TRAINER = CN()
    c.TRAINER.NAME = ""
    return c


def extend_cfg(cfg, trainers=None):
    """Add this project's nodes, the dataset nodes and the nodes of the trainers named in
    ``trainers`` (all when None; plugin mode passes the ones it registers into Dassl) to ``cfg``."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # CoOp: all | base | new

    cfg.TEST.RETRIEVAL_TOPK = 0  # retrieval: mAP@k over the top k; 0 = mAP@all

    # A step budget for the trainers that train in mini-batches over cached views (CMM, CLIPAdapter,
    # TipAdapterF, CLAP, ZSLP, FLEXCLIP's stage 2; TrainerBase.budgeted_epochs): 0 = the recipe's epochs (the published default);
    # N > 0 = as many whole epochs as fit in N optimiser steps (at least one), schedule over those.
    cfg.OPTIM.MAX_STEPS = 0

    cfg.CLIP = CN()
    # Weights for MODEL.BACKBONE.NAME: "" = "openai" for CoOp names (RN50, ViT-B/16, ...);
    # otherwise an open_clip pretrained tag, a checkpoint file, or "none" (random init).
    cfg.CLIP.PRETRAINED = ""
    cfg.CLIP.CACHE_DIR = ""  # where downloaded weights live ("" = open_clip / HF defaults)
    cfg.CLIP.PRECISION = "amp"  # amp | fp16 | fp32 (CPU always runs fp32)
    cfg.CLIP.DOWNLOAD_TIMEOUT = 10.0  # seconds before a download attempt is declared offline

    cfg.FEATURES = CN()
    cfg.FEATURES.CACHE_DIR = ""  # "" = $FEWSHOT_CLIP_CACHE or ~/.cache/fewshot_clip
    cfg.FEATURES.IMAGE_IDENTITY = "stat"  # what of each image file the cache key holds: stat | sha256
    cfg.FEATURES.AUG_VIEWS = 10  # augmented views per few-shot image (Tip-Adapter's 10)
    cfg.FEATURES.AUG_SCALE = (0.5, 1.0)  # RandomResizedCrop scale of those views
    cfg.FEATURES.AUG_FLIP = True
    cfg.FEATURES.AUG_SEED = 0  # views are a fixed bank per image, shared by every seed
    cfg.FEATURES.LONG_TEXT = "chunk_mean"  # texts of image-text pairs: truncate | chunk_mean | sentence_mean
    cfg.FEATURES.MAX_TEXT_CHUNKS = 32  # windows kept per text (chunk_mean / sentence_mean)

    add_dataset_nodes(cfg)
    return add_trainer_nodes(cfg, trainers)


def get_cfg_default():
    return extend_cfg(dassl_defaults())


def merge_file(cfg, path):
    try:
        cfg.merge_from_file(path)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    except (KeyError, ValueError, AssertionError) as e:
        raise ConfigError(f"{path}: {describe_merge_error(e, cfg)}") from None


def merge_opts(cfg, opts):
    if len(opts) % 2:
        raise ConfigError(f"command-line options must be KEY VALUE pairs, got an odd list: {opts}")
    try:
        cfg.merge_from_list(list(opts))
    except (KeyError, ValueError, AssertionError) as e:
        raise ConfigError(f"command line: {describe_merge_error(e, cfg)}") from None


def describe_merge_error(e, cfg):
    text = str(e.args[0]) if e.args else str(e)
    if text.startswith(("Non-existent config key", "Non-existent key")):  # yaml / command line
        key = text.split(":", 1)[1].strip()
        close = difflib.get_close_matches(key, config_keys(cfg), n=3, cutoff=0.85)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        return f"unknown config key {key!r} ({hint}every key must exist in the defaults; see trainers/core/config.py)"
    return text


def config_keys(node, prefix=""):
    """Every leaf key of a config as a dotted name (``DATASET.NUM_SHOTS``)."""
    keys = []
    for name, value in node.items():
        keys += config_keys(value, f"{prefix}{name}.") if isinstance(value, CN) else [f"{prefix}{name}"]
    return keys


def resolve_seed(cfg):
    """A negative seed means random: draw one and store it so the log says how to repeat it."""
    if cfg.SEED < 0:
        cfg.SEED = random.SystemRandom().randrange(1, 2**31)
        return True
    return False
