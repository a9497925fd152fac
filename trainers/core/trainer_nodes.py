"""Every trainer's own config node (``TRAINER.<NAME>``, and ``TRAIN.TENSORBOARD`` of the loop),
declared here as CoOp's train.py declares its trainers' nodes, so the defaults are built without
importing any trainer (the registry imports only the one a run names). ``TRAINER_NODES`` says
which node functions each trainer reads; the values cite the original recipes they follow."""
from yacs.config import CfgNode as CN

from methods.recipes import (
    COOP_C_GRID,
    GDA_ALPHA_GRID,
    GDA_AUGMENT_EPOCH,
    LPPP_ALPHA_EVERY,
    LPPP_AUG_SCALE,
    LPPP_AUG_VIEWS,
    LPPP_EPOCHS,
)


def tensorboard_node(cfg):
    """TRAIN.TENSORBOARD: write Dassl's TensorBoard scalars to ``<OUTPUT_DIR>/tensorboard``
    (True, the default) or write no tensorboard folder at all (False)."""
    cfg.TRAIN.TENSORBOARD = True


def zeroshot_clip_node(cfg):
    cfg.TRAINER.ZEROSHOTCLIP = CN()
    # "custom": the dataset's CoOp template; "ensemble": the 7 ImageNet templates (+ the
    # dataset's own elsewhere, as CoOp's ZeroshotCLIP2); "": the trainer's default.
    cfg.TRAINER.ZEROSHOTCLIP.TEMPLATES = ""


def coop_node(cfg):
    cfg.TRAINER.COOP = CN()
    c = cfg.TRAINER.COOP
    c.N_CTX = 16  # number of context vectors (ignored with CTX_INIT: its token count)
    c.CSC = False  # class-specific context (with CTX_INIT each class starts from the words; CoOp ignores CSC)
    c.CTX_INIT = ""  # initialisation words, e.g. "a photo of a" ("" = N(0, 0.02))
    # fp16 | fp32 | amp: precision of the text encoder and the context (CPU always fp32); images are
    # encoded at CLIP.PRECISION, the feature cache's
    c.PREC = "fp16"
    c.CLASS_TOKEN_POSITION = "end"  # end | middle | front
    c.FEATURE_VIEWS = 0  # 0 = re-augment and encode training images every batch; N = N cached views


def linear_probe_node(cfg):
    cfg.TRAINER.LINEARPROBE = CN()
    # CoOp's initial search list for C (inverse regularisation strength), searched in order.
    cfg.TRAINER.LINEARPROBE.C_GRID = list(COOP_C_GRID)
    cfg.TRAINER.LINEARPROBE.NUM_STEP = 8  # binary-search steps after the grid (CoOp's --num_step)
    cfg.TRAINER.LINEARPROBE.MAX_ITER = 1000  # lbfgs iterations per fit (CoOp)
    # CoOp fits the raw image-encoder output (lpclip/feat_extractor.py does not normalise it).
    cfg.TRAINER.LINEARPROBE.NORMALIZE = False
    # strict: choose C on the few-shot val split; lpclip: on lpclip's min(K, 4) sample of the full val split
    cfg.TRAINER.LINEARPROBE.PROTOCOL = "strict"
    # True: start each fit from the nearest already fitted C's solution (faster; may differ from
    # CoOp within lbfgs's tolerance, see the module docstring); False: from zero, as CoOp
    cfg.TRAINER.LINEARPROBE.WARM_START = False
    # Threads of the C search's BLAS / OpenMP pools (0: the machine's setting). Fixed so a seeded
    # run is bit-identical on any core count; 1 is also the fastest below ImageNet size (README,
    # "Speed at ImageNet size"): lbfgs's products are small and OpenBLAS's thread sync dominates.
    cfg.TRAINER.LINEARPROBE.NUM_THREADS = 1


def tip_adapter_node(cfg):
    """TRAINER.TIPADAPTER, shared by TipAdapter and TipAdapterF."""
    cfg.TRAINER.TIPADAPTER = CN()
    c = cfg.TRAINER.TIPADAPTER
    c.AUGMENT_EPOCH = 10  # augmented views averaged into each cache key (the original's augment_epoch)
    c.INIT_ALPHA = -1.0  # < 0: the published init_alpha for DATASET.NAME (fallback 2.0)
    c.INIT_BETA = -1.0  # < 0: the published init_beta (1.0 everywhere)
    c.SEARCH = True  # grid-search alpha / beta on the PROTOCOL's split; False keeps INIT_*
    c.PROTOCOL = "strict"  # strict: search on the few-shot val split; full_val: the original's (see docstring)
    c.SEARCH_SCALE = ()  # (beta_max, alpha_max); (): the published search_scale (fallback (12, 10))
    c.SEARCH_STEP = (200, 20)  # grid points for (beta, alpha), each linspace(0.1, max) without max
    # "custom": the dataset's CoOp template; "ensemble": CoOp's 7-template ensemble (+ the
    # dataset's template off ImageNet); "": the original's choice, i.e. the 7 templates on
    # ImageNet and the dataset's template elsewhere (its templates are CoOp's).
    c.TEMPLATES = ""
    c.EPOCHS = -1  # TipAdapterF: < 0 = 100 on EuroSAT (published), OPTIM.MAX_EPOCH elsewhere
    c.EPS = 1e-4  # TipAdapterF: the optimizer's eps (the original's AdamW eps)


def clip_adapter_node(cfg):
    cfg.TRAINER.CLIPADAPTER = CN()
    cfg.TRAINER.CLIPADAPTER.RATIO = 0.2  # residual ratio: weight of the adapted feature (original: 0.2)
    cfg.TRAINER.CLIPADAPTER.REDUCTION = 4  # bottleneck width = feature dim / REDUCTION (original: 4)
    # Cached augmented views per few-shot image; each epoch draws one per image. The original
    # re-augments every epoch (200 encoder passes over the few-shot images); 10, the size of the
    # FEATURES.AUG_VIEWS bank (Tip-Adapter's), costs 10 passes, and each view recurs about
    # MAX_EPOCH / 10 times. More views = closer to the original, at one encoder pass each.
    cfg.TRAINER.CLIPADAPTER.NUM_VIEWS = 10


def gda_node(cfg):
    cfg.TRAINER.GDA = CN()
    c = cfg.TRAINER.GDA
    c.AUGMENT_EPOCH = GDA_AUGMENT_EPOCH  # augmented views per few-shot image, each one sample (original: 10)
    c.ALPHA_GRID = list(GDA_ALPHA_GRID)  # searched in order, first best kept; one value: alpha fixed, no search
    c.PROTOCOL = "strict"  # strict: alpha on the few-shot val split; full_val: the original's (see docstring)
    # "custom": the dataset's CoOp template; "ensemble": CoOp's 7 templates (+ the dataset's off
    # ImageNet); "": the original's, i.e. the 7 templates on ImageNet, the dataset's template elsewhere.
    c.TEMPLATES = ""


def lp_plus_plus_node(cfg):
    cfg.TRAINER.LPPLUSPLUS = CN()
    c = cfg.TRAINER.LPPLUSPLUS
    c.EPOCHS = LPPP_EPOCHS  # full-batch iterations (configs/base.yaml train_epoch: 300)
    c.AUG_VIEWS = LPPP_AUG_VIEWS  # cached augmented views per few-shot image, all trained on (original: 1)
    c.AUG_SCALE = LPPP_AUG_SCALE  # their RandomResizedCrop scale (original: (0.5, 1), with flip)
    c.ALPHA_EVERY = LPPP_ALPHA_EVERY  # alpha takes a step every this many epochs (original: 10)
    # "accumulated": alpha's step uses the sum of its gradients since epoch 1 (the official code never
    # zeroes alpha.grad); "current": only the current epoch's gradient (the paper's block step).
    c.ALPHA_GRAD = "accumulated"
    # "": the original's templates (the 7-template ensemble on ImageNet, the dataset's CoOp
    # template elsewhere); "custom" / "ensemble" as for TRAINER.TIPADAPTER.TEMPLATES.
    c.TEMPLATES = ""
    c.PROTOCOL = "strict"  # strict: no validation (or few-shot val with best_val); full_val: see docstring


def clap_node(cfg):
    """TRAINER.CLAP, shared by CLAP and ZSLP."""
    cfg.TRAINER.CLAP = CN()
    # Augmented views per support image (the original's epochs_aumentation = 20)
    cfg.TRAINER.CLAP.NUM_VIEWS = 20
    # strict: adapted on the support set only, nothing selected on any split (the only protocol)
    cfg.TRAINER.CLAP.PROTOCOL = "strict"


def cmm_node(cfg):
    cfg.TRAINER.CMM = CN()
    c = cfg.TRAINER.CMM
    c.ALPHA = 1.0  # weight of the CMM logits fused with zero-shot CLIP's
    c.LAMBDA = 5.0  # weight of the triplet term (chosen on the simulated benchmark's val split)
    c.MARGIN = 1.0  # triplet margin (torch's TripletMarginLoss default)
    c.DISTANCE = "euclidean"  # between L2-normalised vectors (see module doc) | cosine (1 - cos)
    c.NEGATIVE = "hardest"  # hardest (paper) | random wrong-class prototype (ablation)
    c.RESIDUAL = True  # v' = vW + v with W = 0 (paper); False: plain v' = vW, W as nn.Linear (ablation)
    c.BIAS = False  # an additive bias in the map
    c.TRAIN_PROTOTYPES = True  # T trainable (paper); False: T frozen at T0 (ablation)
    c.FUSION = True  # zero-shot + alpha * CMM (paper); False: CMM logits alone (ablation)
    # zero: W = 0, CMM starts as zero-shot CLIP (paper); gda: W from GDA's closed form on the
    # training views (methods.cmm.gda_map_init; ablation)
    c.MAP_INIT = "zero"
    c.PROTOTYPE_LR_MULT = 1.0  # lr of T relative to OPTIM.LR (the map's)
    c.TEMPLATES = "ensemble"  # T0 = template mean (paper): CoOp's ensemble; or "custom"
    c.SEARCH = False  # choose ALPHA / LAMBDA / LR on the few-shot val split
    c.SEARCH_ALPHA = [0.5, 1.0, 2.0]
    c.SEARCH_LAMBDA = [1.0, 5.0]
    c.SEARCH_LR = [1e-3]


def flex_clip_node(cfg):
    cfg.TRAINER.FLEXCLIP = CN()
    c = cfg.TRAINER.FLEXCLIP
    c.TEMPLATES = "custom"  # class embedding a = CLIP text feature of the class prompt(s)
    # stage 1: conditional VAE-GAN per modality
    c.GENERATE = True  # False: stage 2 on real features only (the "no generation" baseline)
    c.LATENT = 64
    c.HIDDEN = 512
    c.STAGE1_STEPS = 1000  # generator updates (batches drawn with replacement; see fit_vaegan)
    c.STAGE1_LR = 1e-3  # Adam, betas (0.5, 0.999) as usual for WGAN-GP
    c.N_CRITIC = 5  # critic steps per generator step
    c.GP_WEIGHT = 10.0
    c.KL_WEIGHT = 1.0
    c.RECONSTRUCTION_WEIGHT = 10.0
    c.RECONSTRUCTION = "cosine"  # cosine | mse (CLIP features are not in [0, 1]: no BCE)
    c.ADVERSARIAL_WEIGHT = 1.0
    c.CROSS_MODAL = "pair"  # generated image and text of one (z, a) close to each other | "class"
    c.CROSS_MODAL_WEIGHT = 1.0
    # retrieval: pseudo pairs per target class (rebalancing X shots vs the source); few-shot val
    # mAP, simulated pairs, 2 seeds, 4 / 16 shots: 50 -> 71.3 / 87.0, 200 -> 73.3 / 88.6,
    # 400 -> 73.7 / 88.8 (within the seed spread, with 1.7 times the stage-2 pairs)
    c.NUM_GENERATED = 200
    # classification: pseudo images per class. The K-shot sets are balanced, so pseudo features
    # only add samples; as many as a 1-shot class's 10 views, since 200 drown the real ones
    # (few-shot val accuracy, simulated, seed 1: 78.1% vs 59.4% at 1 shot, 82.8% vs 81.2% at 16).
    c.NUM_GENERATED_CLS = 10
    # stage 2: gated residual projection + shared classifier (OPTIM.* drives it)
    c.PROJECTION = "gate"  # gate (paper) | no_gate (g = 0.5) | no_fusion (projection only)
    c.PROJ_HIDDEN = 512
    c.GATE_BIAS = -2.0  # initial gate bias: g ~ 0.12, close to the CLIP features at the start
    c.CLASSIFIER_SCALE = 16.0
    c.ALIGN = "contrastive"  # contrastive (symmetric InfoNCE) | mse
    c.ALIGN_WEIGHT = 1.0
    c.TEMPERATURE = 0.07
    # torch intra-op threads for training and testing: a fixed count makes seeded runs
    # bit-identical on any core count (module docstring); 0 = torch's setting (faster on many
    # cores, but the numbers then depend on the thread count).
    c.NUM_THREADS = 1


TRAINER_NODES = {  # trainer name -> the node functions it reads (TRAINER_REGISTRY's names)
    "CLAP": (clap_node,),
    "ZSLP": (clap_node,),
    "CLIPAdapter": (clip_adapter_node,),
    "CMM": (cmm_node,),
    "CoOp": (coop_node,),
    "FLEXCLIP": (flex_clip_node,),
    "GDA": (gda_node,),
    "LinearProbe": (linear_probe_node,),
    "LPPlusPlus": (lp_plus_plus_node,),
    "TipAdapter": (tip_adapter_node,),
    "TipAdapterF": (tip_adapter_node,),
    "ZeroshotCLIP": (zeroshot_clip_node,),
    "ZeroshotCLIP2": (zeroshot_clip_node,),
}


def add_trainer_nodes(cfg, names=None):
    """The loop's keys and the nodes of the trainers ``names`` (all when None), each once."""
    tensorboard_node(cfg)
    names = sorted(TRAINER_NODES) if names is None else names
    for node in dict.fromkeys(node for name in names for node in TRAINER_NODES[name]):
        node(cfg)
    return cfg
