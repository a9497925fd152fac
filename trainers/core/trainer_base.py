"""TrainerBase: Dassl's SimpleTrainer/TrainerX loop, log lines and checkpoint layout.

Subclasses build their data (``build_data``) and model (``build_model``, calling
``register_model``), implement ``forward_backward(batch) -> {loss name: value}`` and
``model_inference(input) -> logits``, and provide ``train_loader_x`` plus
``test_batches(split)``. Training-free trainers set ``trains = False`` and do their work in
``fit()`` (build a cache, search on val); ``train()`` then saves what they registered and goes
to the final evaluation, still printing "Finish training" so CoOp's parser reads it.

Like Dassl, a run writes TensorBoard scalars to ``<OUTPUT_DIR>/tensorboard`` (TRAIN.TENSORBOARD):
``train/<loss>`` and ``train/lr`` every batch, ``<split>/<metric>`` at every evaluation.

Checkpoints record the class names and ids (ImageNet: wnids), so a model trained on one class
list can be evaluated on another (ImageNet -> ImageNet-A/R): ``remap_classes`` receives the
trained classes and ``eval_class_index`` maps them by id (``class_map``). ``build_data`` sets
``classnames`` and ``class_ids`` (the ids of the labels, in label order).

A trainer that reads the training split (``fits_on_train``: it trains, or builds a cache or fits
a probe on ``train_x``) refuses to train on a test-only set (ImageNet-V2/Sketch/A/R), whose
training split is its test set (``check_trains_on``).
"""
import datetime
import os
import time
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import torch

from .checkpoint import BEST_NAME, checkpoint_name, latest_checkpoint, load_checkpoint, save_checkpoint
from .class_map import ClassList, ClassMismatchError, class_index_map
from .evaluator import Classification
from .run_provenance import write_run_provenance
from .seeding import rng_state, set_rng_state
from .tensorboard_writer import open_scalar_writer


class AverageMeter:
    def __init__(self):
        self.val = self.sum = 0.0
        self.count = 0

    def update(self, val, n=1):
        self.val = float(val)
        self.sum += float(val) * n
        self.count += n

    @property
    def avg(self):
        return self.sum / max(self.count, 1)


class TrainerBase:
    trains = True  # False: training-free (zero-shot, Tip-Adapter): fit() instead of epochs
    fits_on_train = True  # False: nothing is fitted on train_x (zero-shot): may "train" on a test-only set
    feature_level = False  # True: works on frozen features (runs on the simulated benchmark)
    lr_step_per_batch = False  # True: the scheduler steps every batch (Tip-Adapter-F), not every epoch
    step_budget = False  # True: honours OPTIM.MAX_STEPS (budgeted_epochs); others refuse a budget

    def __init__(self, cfg):
        self.cfg = cfg
        self.device = torch.device("cuda" if torch.cuda.is_available() and cfg.USE_CUDA else "cpu")
        self.output_dir = cfg.OUTPUT_DIR
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.check_step_budget()
        self.step_budget_cut = None  # set by budgeted_epochs when OPTIM.MAX_STEPS cut the recipe (provenance)
        self._models, self._optims, self._scheds = OrderedDict(), OrderedDict(), OrderedDict()
        self.best_result = -np.inf
        self._writer = None
        self.build_data()
        self.build_model()
        self.evaluator = Classification(cfg, self.lab2cname)

    def check_step_budget(self):
        """OPTIM.MAX_STEPS is refused, not ignored, by a trainer that does not honour it."""
        max_steps = self.cfg.OPTIM.MAX_STEPS
        if max_steps < 0:
            raise ValueError(f"OPTIM.MAX_STEPS must be >= 0 (0 = the recipe's epochs), got {max_steps}")
        if max_steps and not self.step_budget:
            raise ValueError(f"{type(self).__name__} has no step budget: OPTIM.MAX_STEPS must be 0 for it "
                             f"(got {max_steps}); it caps the mini-batch trainers on cached views "
                             "(CMM, CLIPAdapter, TipAdapterF, CLAP, ZSLP, FLEXCLIP's stage 2)")

    def budgeted_epochs(self, epochs, batches_per_epoch, source="OPTIM.MAX_EPOCH"):
        """``epochs`` (the recipe), or under OPTIM.MAX_STEPS as many whole epochs of
        ``batches_per_epoch`` steps as fit in the budget, at least one."""
        max_steps = self.cfg.OPTIM.MAX_STEPS
        if not max_steps or epochs * batches_per_epoch <= max_steps:
            return epochs
        budgeted = max(1, max_steps // batches_per_epoch)
        self.step_budget_cut = {"max_steps": max_steps, "epochs": budgeted, "recipe_epochs": epochs,
                                "steps": budgeted * batches_per_epoch, "recipe_steps": epochs * batches_per_epoch}
        print(f"Step budget: {budgeted} epoch(s) x {batches_per_epoch} batches = {budgeted * batches_per_epoch} "
              f"steps (OPTIM.MAX_STEPS {max_steps}; the recipe's {epochs} epochs ({source}) would take "
              f"{epochs * batches_per_epoch})")
        return budgeted

    # --- to implement -------------------------------------------------------------
    def build_data(self):
        raise NotImplementedError

    def build_model(self):
        raise NotImplementedError

    def forward_backward(self, batch):
        raise NotImplementedError

    def model_inference(self, inputs):
        raise NotImplementedError

    def fit(self):
        """Training-free trainers: compute what ``model_inference`` needs (nothing for zero-shot)."""

    def report(self):
        """Print end-of-run summaries; FeatureTrainer reports the feature cache's hits and misses."""

    def selection_protocol(self):
        """``{"protocol": name, "selected": {value: split it was chosen on}}`` for provenance.json.
        Here: ``strict`` (choices on the few-shot val split only), and the epoch when a training
        run deploys its best-val epoch. Trainers that search values override it."""
        cfg = self.cfg
        best_epoch = self.trains and cfg.TEST.FINAL_MODEL == "best_val" and not cfg.TEST.NO_TEST
        return {"protocol": "strict", "selected": {"epoch": "fewshot_val"} if best_epoch else {}}

    def test_batches(self, split):
        """An iterable of ``(inputs, labels)`` on ``self.device`` for ``split`` ("val" or "test")."""
        raise NotImplementedError

    # --- models ---------------------------------------------------------------------
    def register_model(self, name, model, optim=None, sched=None, replace=False):
        """Track a model (saved, loaded, switched train/eval) with its optimizer and scheduler;
        ``replace`` swaps one already registered (e.g. after a hyper-parameter search)."""
        if name in self._models and not replace:
            raise KeyError(f"model {name!r} registered twice")
        self._models[name], self._optims[name], self._scheds[name] = model, optim, sched

    def set_model_mode(self, mode):
        for model in self._models.values():
            model.train(mode == "train")

    def update_lr(self):
        for sched in self._scheds.values():
            if sched is not None:
                sched.step()

    def get_current_lr(self):
        optims = [o for o in self._optims.values() if o is not None]
        return optims[0].param_groups[0]["lr"] if optims else 0.0

    def model_backward_and_update(self, loss, names=None):
        if not torch.isfinite(loss).all():
            raise FloatingPointError(f"loss is {loss.item()} at epoch {self.epoch + 1}: training diverged")
        names = names or list(self._models)
        for name in names:
            if self._optims[name] is not None:
                self._optims[name].zero_grad()
        loss.backward()
        for name in names:
            if self._optims[name] is not None:
                self._optims[name].step()

    # --- checkpoints ----------------------------------------------------------------
    def save_model(self, epoch, directory, val_result=None, model_name=""):
        for name, model in self._models.items():
            optim, sched = self._optims[name], self._scheds[name]
            state = {
                "state_dict": model.state_dict(),
                "epoch": epoch + 1,
                "optimizer": optim.state_dict() if optim is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "val_result": val_result,
                "rng_state": rng_state(),
                "classnames": list(self.classnames),
                "class_ids": list(self.class_ids),
            }
            save_checkpoint(state, os.path.join(directory, name), model_name=model_name)

    def resume_model_if_exist(self, directory):
        """Restore every registered model, optimizer, scheduler and the RNGs from the latest
        checkpoint under ``directory``; return the epoch to start from (0 if none)."""
        paths = {name: latest_checkpoint(os.path.join(directory, name)) for name in self._models}
        if not self._models or any(p is None for p in paths.values()):
            print("No checkpoint found, train from scratch")
            return 0
        print(f"Found checkpoint at {directory} (will resume training)")
        start_epoch = 0
        for name, path in paths.items():
            ckpt = load_checkpoint(path)
            self._models[name].load_state_dict(ckpt["state_dict"])
            if self._optims[name] is not None and ckpt["optimizer"] is not None:
                self._optims[name].load_state_dict(ckpt["optimizer"])
            if self._scheds[name] is not None and ckpt["scheduler"] is not None:
                self._scheds[name].load_state_dict(ckpt["scheduler"])
            set_rng_state(ckpt["rng_state"])
            start_epoch = ckpt["epoch"]
            print(f"Loaded {path} (epoch={start_epoch})")
        return start_epoch

    def load_model(self, directory, epoch=None):
        """Load weights for evaluation: ``model.pth.tar-<epoch>``, else ``model-best.pth.tar``,
        else the latest checkpoint (Dassl only tries the best one)."""
        if not self._models:
            return
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        for name, model in self._models.items():
            folder = os.path.join(directory, name)
            if epoch is not None:
                path = os.path.join(folder, checkpoint_name(epoch))
            elif os.path.isfile(os.path.join(folder, BEST_NAME)):
                path = os.path.join(folder, BEST_NAME)
            else:
                path = latest_checkpoint(folder) or os.path.join(folder, BEST_NAME)
            ckpt = load_checkpoint(path)
            state = ckpt["state_dict"]
            trained = self.checkpoint_classes(ckpt)
            if not trained.same_classes(self.classes):
                print(f"Evaluating {len(self.classnames)} classes with a model trained on {len(trained.names)} "
                      f"(classes matched by {trained.matched_by(self.classes)})")
                state = self.remap_classes(name, state, trained)
            self.load_state(name, model, state)
            val = ckpt.get("val_result")
            val_text = f"{val:.1f}" if val is not None else "none"
            print(f"Load {path} to {name} (epoch={ckpt['epoch']}, val_result={val_text})")

    def load_state(self, name, model, state_dict):
        """Put a checkpoint's weights into a registered model (override for buffers of any shape)."""
        model.load_state_dict(state_dict)

    def remap_classes(self, name, state_dict, trained_classes):
        """The state dict for the evaluation classes: row ``i`` of a per-class tensor becomes row
        ``self.eval_class_index(trained_classes)[i]`` of the trained one (``trained_classes``: the
        checkpoint's ClassList). Trainers with per-class parameters implement this; class-agnostic
        ones return ``state_dict`` unchanged (and so also evaluate on classes never trained on,
        e.g. base -> new)."""
        raise ClassMismatchError(f"{type(self).__name__} cannot evaluate a checkpoint on classes other than the "
                                 "ones it was trained on")

    @property
    def classes(self):
        """This run's classes (names and ids) in label order."""
        return ClassList(self.classnames, self.class_ids)

    def checkpoint_classes(self, ckpt):
        """The classes a checkpoint was trained on: its names and ids; names only for a checkpoint
        saved before ids were recorded; this run's classes for one that records neither (CoOp's)."""
        if not ckpt.get("classnames"):
            return self.classes
        return ClassList(ckpt["classnames"], ckpt.get("class_ids"))

    def eval_class_index(self, trained_classes):
        """Position of each evaluation class among the trained ones, matched by class id (by name
        for a checkpoint without ids)."""
        return class_index_map(trained_classes, self.classes)

    @classmethod
    def check_trains_on(cls, dataset_cls):
        """Refuse to train on a test-only set (``test_only``: ImageNet-V2/Sketch/A/R, where
        train = test) when this trainer reads the training split: it would fit on test images."""
        if cls.fits_on_train and getattr(dataset_cls, "test_only", False):
            source = getattr(dataset_cls, "source_dataset", "the dataset it is a shifted copy of")
            raise ValueError(f"{dataset_cls.__name__} is a test-only set (its training split is its test set), and "
                             f"{cls.__name__} fits on the training split, so it would fit on test images. Train on "
                             f"{source}, then evaluate here with --eval-only --model-dir <that run's output folder> "
                             "(training-free zero-shot trainers run here directly)")

    # --- the loop ---------------------------------------------------------------------
    def train(self):
        """Dassl's epochs (or ``fit()`` when training-free), then the final evaluation, with the
        TensorBoard writer open throughout."""
        self.check_trains_on(type(self.dataset))
        with self.writing_scalars():
            if self.trains:
                self.before_train()
                for self.epoch in range(self.start_epoch, self.max_epoch):
                    self.run_epoch()
                    self.after_epoch()
            else:
                self.time_start = time.time()
                self.fit()
                if self._models:
                    self.save_model(0, self.output_dir)
            self.after_train()

    def before_train(self):
        self.start_epoch = self.resume_model_if_exist(self.cfg.RESUME or self.output_dir)
        self.time_start = time.time()

    def run_epoch(self):
        self.set_model_mode("train")
        meters = OrderedDict()
        batch_time, data_time = AverageMeter(), AverageMeter()
        self.num_batches = len(self.train_loader_x)
        print_freq = self.cfg.TRAIN.PRINT_FREQ
        end = time.time()
        for self.batch_idx, batch in enumerate(self.train_loader_x):
            data_time.update(time.time() - end)
            summary = self.forward_backward(batch)
            batch_time.update(time.time() - end)
            for key, value in summary.items():
                meters.setdefault(key, AverageMeter()).update(value)
            if self.lr_step_per_batch:
                self.update_lr()
            if (self.batch_idx + 1) % print_freq == 0 or self.num_batches < print_freq:
                remaining = self.num_batches - self.batch_idx - 1
                remaining += (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * remaining)))
                losses = " ".join(f"{k} {m.val:.4f} ({m.avg:.4f})" for k, m in meters.items())
                print(f"epoch [{self.epoch + 1}/{self.max_epoch}] batch [{self.batch_idx + 1}/{self.num_batches}] "
                      f"time {batch_time.val:.3f} ({batch_time.avg:.3f}) data {data_time.val:.3f} "
                      f"({data_time.avg:.3f}) {losses} lr {self.get_current_lr():.4e} eta {eta}")
            n_iter = self.epoch * self.num_batches + self.batch_idx
            for key, meter in meters.items():
                self.write_scalar(f"train/{key}", meter.avg, n_iter)
            self.write_scalar("train/lr", self.get_current_lr(), n_iter)
            end = time.time()
        if not self.lr_step_per_batch:
            self.update_lr()

    def after_epoch(self):
        cfg = self.cfg
        last_epoch = self.epoch + 1 == self.max_epoch
        freq = cfg.TRAIN.CHECKPOINT_FREQ
        if not cfg.TEST.NO_TEST and cfg.TEST.FINAL_MODEL == "best_val":
            result = self.test(split="val")
            if result > self.best_result:
                self.best_result = result
                self.save_model(self.epoch, self.output_dir, val_result=result, model_name=BEST_NAME)
        if last_epoch or (freq > 0 and (self.epoch + 1) % freq == 0):
            self.save_model(self.epoch, self.output_dir)

    def after_train(self):
        write_run_provenance(self)
        print("Finish training")
        if not self.cfg.TEST.NO_TEST:
            if self.trains and self.cfg.TEST.FINAL_MODEL == "best_val":
                print("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                print("Deploy the last-epoch model")
            self.test()
        elapsed = datetime.timedelta(seconds=round(time.time() - self.time_start))
        print(f"Elapsed: {elapsed}")

    @torch.no_grad()
    def test(self, split=None):
        """Evaluate on ``split`` (TEST.SPLIT by default), print the result block, return accuracy."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        split = split or self.cfg.TEST.SPLIT
        batches = self.test_batches(split)  # may encode features: keep that out of the result block
        print(f"Evaluate on the *{split}* set")
        for inputs, labels in batches:
            self.evaluator.process(self.model_inference(inputs), labels)
        return self.test_result(split, self.evaluator.evaluate())

    def test_result(self, split, results):
        """What ``test`` returns (the first metric), after writing every metric as the scalar
        ``<split>/<metric>`` at step ``self.epoch`` (Dassl)."""
        for key, value in results.items():
            self.write_scalar(f"{split}/{key}", value, self.epoch)
        return next(iter(results.values()))

    # --- TensorBoard scalars ------------------------------------------------------------
    @contextmanager
    def writing_scalars(self):
        """Scalars written inside the block go to ``<OUTPUT_DIR>/tensorboard`` (a training run, or
        an eval-only test); the writer is closed after it, also when the block fails."""
        self._writer = open_scalar_writer(self.cfg)
        try:
            yield
        finally:
            if self._writer is not None:
                self._writer.close()
            self._writer = None

    def write_scalar(self, tag, value, step):
        """Dassl's ``write_scalar``: a no-op outside ``writing_scalars`` or with scalars off."""
        if self._writer is not None:
            self._writer.add_scalar(tag, value, step)
