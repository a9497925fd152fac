"""The config nodes of the datasets that have keys of their own (``DATASET.RETRIEVAL``,
``DATASET.SIMULATED``, ``DATASET.SIMULATED_PAIRS``), declared apart from the dataset modules so
the defaults are built without importing any dataset."""
from yacs.config import CfgNode as CN


def retrieval_node(cfg):
    cfg.DATASET.RETRIEVAL = CN()
    # Share of the classes (first in label order) that are source classes when the class
    # split file is first written.
    cfg.DATASET.RETRIEVAL.SOURCE_FRACTION = 0.5
    # The class split: "" = <dataset folder>/class_split.json (written once, then read).
    cfg.DATASET.RETRIEVAL.CLASS_SPLIT_FILE = ""
    # Validation pairs per target class: min(NUM_SHOTS, this), from the target training pairs
    # not drawn as shots (module docstring); 4 as CoOp's few-shot val. 0 = no val split.
    cfg.DATASET.RETRIEVAL.VAL_SHOTS = 4


def manifest_node(cfg):
    # The folder (under DATASET.ROOT) of a collection read as DATASET.NAME ManifestPairs.
    cfg.DATASET.RETRIEVAL.MANIFEST_FOLDER = ""


def simulated_node(cfg):
    cfg.DATASET.SIMULATED = CN()
    node = cfg.DATASET.SIMULATED
    node.NUM_CLASSES = 32
    node.DIM = 128
    node.CONCEPT_COSINE = 0.7  # mean cosine between two class concepts (CLIP's classes crowd)
    node.TRAIN_PER_CLASS = 64
    node.VAL_PER_CLASS = 16
    node.TEST_PER_CLASS = 100
    node.TEXT_NOISE = 0.35  # how far each class's text prototype is from its image concept
    node.TEMPLATE_NOISE = 0.3  # extra per-template noise (prompt ensembling averages it out)
    node.ROTATION = 0.3  # misalignment of the image encoder (near-identity rotation angle)
    node.GAP = 0.8  # norm of the shared image-side offset: the modality gap
    node.SPREAD = 0.5  # within-class spread along a class-specific low-rank basis
    node.SPREAD_RANK = 4
    node.NOISE = 1.2  # isotropic per-image noise
    node.AUG_NOISE = 0.15  # per augmented view jitter
    node.SHIFT = 0.25  # SimulatedShift: extra rotation angle and relative noise increase
    node.SEED = 0  # the data set itself; --seed drives few-shot sampling


def simulated_pairs_node(cfg):
    cfg.DATASET.SIMULATED_PAIRS = CN()
    node = cfg.DATASET.SIMULATED_PAIRS
    node.NUM_CLASSES = 40
    node.DIM = 128
    node.CONCEPT_COSINE = 0.7  # mean cosine between two class concepts
    node.TRAIN_PER_CLASS = 100  # training pairs per class (source classes use all of them)
    node.TEST_PER_CLASS = 50
    node.INSTANCE_SPREAD = 0.5  # how far a pair's latent strays from its class concept
    node.IMAGE_NOISE = 0.5
    node.TEXT_NOISE = 0.5
    node.CLASS_TEXT_NOISE = 0.35  # class prompts vs concepts
    node.TEMPLATE_NOISE = 0.3
    node.ROTATION = 0.3  # image-encoder misalignment
    node.GAP = 0.8  # the modality gap (a shared image-side offset)
    node.TARGET_ROTATION = 0.5  # degradation of the target classes: extra misalignment per modality
    node.TARGET_NOISE = 0.5  # ... and relatively more noise
    node.AUG_NOISE = 0.15  # per augmented view jitter
    node.SEED = 0


def add_dataset_nodes(cfg):
    """Every dataset node (the retrieval node first: the manifest key lives in it)."""
    for node in (retrieval_node, manifest_node, simulated_node, simulated_pairs_node):
        node(cfg)
    return cfg
