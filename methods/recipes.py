"""The original recipes' constants that are also config defaults (``trainers/core/trainer_nodes.py``).
They live apart from the formulas, free of torch and scikit-learn, so the config (and with it
the check that a finished run's config is still current) is built without importing either."""

# GDA (Wang et al., ICLR 2024, official code)
GDA_AUGMENT_EPOCH = 10  # configs/few_shots/*.yaml augment_epoch
GDA_ALPHA_GRID = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # main_few_shots.py run(): the alpha search list

# CoOp's linear probe: lpclip/linear_probe.py search list, largest C (weakest regularisation) first.
COOP_C_GRID = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)

# LP++ (Huang et al., CVPR 2024, official code)
LPPP_ALPHA_EVERY = 10  # "if (epoch + 1) % 10 == 0: alpha_vec.data -= lr_alpha * alpha_vec.grad.data"
LPPP_EPOCHS = 300  # configs/base.yaml train_epoch (comment: "linear-Probe: 300")
LPPP_AUG_SCALE = (0.5, 1.0)  # main.py train_tranform RandomResizedCrop(scale=(0.5, 1)) + RandomHorizontalFlip
LPPP_AUG_VIEWS = 1  # main.py encodes the few-shot train loader once: one augmented view per image
