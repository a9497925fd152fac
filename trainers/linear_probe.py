"""LinearProbe: CoOp's linear-probe CLIP (lpclip/) as a training-free trainer.

fit() fits logistic regression on the few-shot train features, choosing C by CoOp's grid +
binary search (CoOp's script also evaluates test at every search step; test is never read
here) on the split TRAINER.LINEARPROBE.PROTOCOL names:
- ``strict`` (default): the few-shot val split (Dassl's draw of min(K, 4) per class), like every
  other choice in this project.
- ``lpclip``: the validation sample CoOp's lpclip/linear_probe.py draws: min(K, 4) images per
  class from the dataset's whole val split (lpclip's features of ``dataset.val`` with no
  few-shot sampling), by numpy's legacy RNG seeded with the run's seed, classes in sorted label
  order (``methods.linear_probe.lpclip_val_indices``). lpclip also draws its train sample from
  that stream first; here the train list stays the benchmark's (every method fits the same
  images), so the val sample follows lpclip's rule but is not the one lpclip draws for that seed.
  On ImageNet, lpclip's val is CoOp's, i.e. the test set: never offered; the sample is drawn
  from the held-out training images of ``datasets/imagenet.py`` (its ``full_val``) instead.
Both use lpclip's search schedule (TRAINER.LINEARPROBE.C_GRID, NUM_STEP 8, MAX_ITER 1000).
Each C is fitted once and the chosen C's fit is deployed as it was scored (CoOp refits it: lbfgs
is deterministic, so the refit is the same classifier).

TRAINER.LINEARPROBE.WARM_START (default False, CoOp's behaviour) starts each fit of the binary
search from the solution of the already fitted C nearest in log10 space (within a decade:
``methods.linear_probe.nearest_fit``). It saves lbfgs iterations (the search narrows in on one
C), but lbfgs stops within its tolerance of the optimum, or at MAX_ITER,
from wherever it starts: a warm-started fit can differ from CoOp's in the last digits, and so
can a prediction near a decision boundary, the val accuracy and the chosen C. It is therefore an
option, off for the published rows; tests/test_fast_paths.py checks a small case where the two agree.
The search runs on TRAINER.LINEARPROBE.NUM_THREADS threads (default 1: ``features.threads``), so
its fits, and the C it chooses, do not change with the machine's core count.
The fitted weights live in a registered module, so the run is checkpointed and ``--eval-only
--model-dir`` reloads it, on a subset of classes too.
"""
import warnings

import torch
from sklearn.exceptions import ConvergenceWarning

from methods.linear_probe import (
    LinearProbeHead,
    accuracy,
    check_c_grid,
    coop_c_search,
    fit_logistic_regression,
    linear_weights,
    lpclip_val_indices,
    nearest_fit,
)

from .core.registry import TRAINER_REGISTRY
from .features.feature_trainer import FeatureTrainer, LabeledFeatures
from .features.search import SPLIT_NAMES, selection_features
from .features.threads import fixed_threads

# TRAINER.LINEARPROBE.PROTOCOL -> (the split C is chosen on, its name in selection_protocol())
PROTOCOLS = {"strict": ("val", SPLIT_NAMES["val"]), "lpclip": ("full_val", "lpclip_val")}


@TRAINER_REGISTRY.register()
class LinearProbe(FeatureTrainer):
    """logits = W f + b, (W, b) from L2 logistic regression on frozen image features f."""

    trains = False

    def build_model(self):
        node = self.cfg.TRAINER.LINEARPROBE
        if node.NUM_STEP < 0 or node.MAX_ITER < 1:
            raise ValueError(f"TRAINER.LINEARPROBE.NUM_STEP must be >= 0 and MAX_ITER >= 1, "
                             f"got {node.NUM_STEP} and {node.MAX_ITER}")
        if node.PROTOCOL not in PROTOCOLS:
            raise ValueError(f"TRAINER.LINEARPROBE.PROTOCOL must be one of {sorted(PROTOCOLS)}, got {node.PROTOCOL!r}")
        if node.PROTOCOL == "lpclip" and not 0 <= self.cfg.SEED < 2 ** 32:
            raise ValueError(f"TRAINER.LINEARPROBE.PROTOCOL lpclip seeds numpy with SEED, which must be in "
                             f"[0, 2**32), got {self.cfg.SEED}")
        try:
            self.c_grid = check_c_grid(node.C_GRID)
        except ValueError as e:
            raise ValueError(f"TRAINER.LINEARPROBE.C_GRID: {e}") from None
        dim = self.split_features(self.cfg.TEST.SPLIT).features.shape[1]
        self.head = LinearProbeHead(dim, self.num_classes, normalize=node.NORMALIZE).to(self.device)
        self.register_model("linear_probe", self.head)

    def feature_splits(self):
        """The probe is fitted on train and C chosen on the protocol's split."""
        return [*super().feature_splits(), "train", PROTOCOLS[self.cfg.TRAINER.LINEARPROBE.PROTOCOL][0]]

    def selection_protocol(self):
        """C is the only selected value: on ``fewshot_val`` (strict) or ``lpclip_val`` (lpclip's
        min(K, 4) sample of the full val split)."""
        protocol = self.cfg.TRAINER.LINEARPROBE.PROTOCOL
        return {"protocol": protocol, "selected": {"C": PROTOCOLS[protocol][1]}}

    def selection_data(self):
        """``(features, description)`` that C is chosen on, under TRAINER.LINEARPROBE.PROTOCOL."""
        if self.cfg.TRAINER.LINEARPROBE.PROTOCOL == "strict":
            return selection_features(self, "val"), "the few-shot val split"
        full = selection_features(self, "full_val")
        rows = torch.from_numpy(lpclip_val_indices(full.labels.numpy(), self.cfg.DATASET.NUM_SHOTS, self.cfg.SEED))
        return (LabeledFeatures(full.features[rows], full.labels[rows]),
                f"lpclip's sample of the full val split (seed {self.cfg.SEED})")

    def fit(self):
        node = self.cfg.TRAINER.LINEARPROBE
        val, on = self.selection_data()
        x_train, y_train = self.probe_inputs(self.split_features("train"))
        x_val, y_val = self.probe_inputs(val)
        print(f"Linear probe: {len(y_train)} train and {len(y_val)} val features of dimension {x_train.shape[1]} "
              f"(C chosen on {on})")

        fits = {}  # C -> its fitted classifier (coop_c_search scores each C once)

        def fit(c):
            init = nearest_fit(fits, c) if node.WARM_START else None
            fits[c] = fit_logistic_regression(x_train, y_train, c, node.MAX_ITER, init=init)
            return fits[c]

        with warnings.catch_warnings(record=True) as caught, fixed_threads(node.NUM_THREADS):
            warnings.simplefilter("always")
            self.chosen_c, val_acc = coop_c_search(lambda c: accuracy(fit(c), x_val, y_val),
                                                   self.c_grid, node.NUM_STEP, on=on)
        classifier = fits[self.chosen_c]
        self.report_warnings(caught, len(fits))
        start = "warm-started from the nearest fitted C" if node.WARM_START else "each from zero"
        print(f"Linear probe: C={self.chosen_c:.4g} (val accuracy {val_acc:.2f}%; {len(fits)} fits, {start})")
        self.head.set_weights(*(t.to(self.device) for t in linear_weights(classifier, self.num_classes)))

    def report_warnings(self, caught, num_fits):
        """One line for lbfgs hitting MAX_ITER (scikit-learn warns once per fit); others as they were."""
        unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        if unconverged:
            print(f"Note: lbfgs stopped at TRAINER.LINEARPROBE.MAX_ITER={self.cfg.TRAINER.LINEARPROBE.MAX_ITER} "
                  f"before converging in {unconverged} of {num_fits} fits (CoOp's runs have the same limit)")
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def probe_inputs(self, data):
        return self.head.prepare(data.features).double().cpu().numpy(), data.labels.numpy()

    def model_inference(self, features):
        return self.head(features)

    def remap_classes(self, name, state_dict, trained_classes):
        index = self.eval_class_index(trained_classes)
        return {key: value[index] for key, value in state_dict.items()}
