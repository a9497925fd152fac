"""Dassl's classification evaluator: accuracy, error and macro-F1, printed as its result block.

CoOp's ``parse_test_res.py`` reads the ``* accuracy: x%`` line of this block.
"""
import os
from collections import OrderedDict, defaultdict

import numpy as np
import torch

from common.atomic_io import torch_save


def batch_accuracy(logits, labels):
    """Top-1 accuracy (%) of a batch: the ``acc`` of the training log lines, val scores of searches."""
    return 100.0 * (logits.argmax(dim=1) == labels).float().mean().item()


def macro_f1(y_true, y_pred):
    """scikit-learn's ``f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))``, to the
    bit: per class present in ``y_true``, 2 tp / (true + predicted), averaged. Written out so the
    run core does not import scikit-learn (about 2 s at every start)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    labels = np.unique(y_true)
    size = int(max(y_true.max(), y_pred.max())) + 1
    tp = np.bincount(y_true[y_true == y_pred], minlength=size)[labels]
    true, predicted = np.bincount(y_true, minlength=size)[labels], np.bincount(y_pred, minlength=size)[labels]
    return float(np.average(2.0 * tp.astype(np.float64) / (1.0 * true.astype(np.float64) + predicted)))


class Classification:
    def __init__(self, cfg, lab2cname=None):
        self.cfg = cfg
        self.lab2cname = lab2cname or {}
        self.reset()

    def reset(self):
        self.correct = 0
        self.total = 0
        self.y_true = []
        self.y_pred = []

    def process(self, logits, labels):
        pred = logits.argmax(dim=1)
        self.correct += int(pred.eq(labels).sum().item())
        self.total += labels.shape[0]
        self.y_true.extend(labels.tolist())
        self.y_pred.extend(pred.tolist())

    def evaluate(self):
        if self.total == 0:
            raise ValueError("nothing to evaluate: the split is empty")
        acc = 100.0 * self.correct / self.total
        err = 100.0 - acc
        f1 = 100.0 * macro_f1(self.y_true, self.y_pred)
        print(
            "=> result\n"
            f"* total: {self.total:,}\n"
            f"* correct: {self.correct:,}\n"
            f"* accuracy: {acc:.1f}%\n"
            f"* error: {err:.1f}%\n"
            f"* macro_f1: {f1:.1f}%"
        )
        results = OrderedDict(accuracy=acc, error_rate=err, macro_f1=f1)
        if self.cfg.TEST.PER_CLASS_RESULT:
            results["perclass_accuracy"] = self.print_per_class()
        if self.cfg.TEST.COMPUTE_CMAT:
            self.save_confusion_matrix()
        return results

    def print_per_class(self):
        hits = defaultdict(list)
        for t, p in zip(self.y_true, self.y_pred):
            hits[t].append(t == p)
        print("=> per-class result")
        accs = []
        for label in sorted(hits):
            res = hits[label]
            acc = 100.0 * sum(res) / len(res)
            accs.append(acc)
            print(f"* class: {label} ({self.lab2cname.get(label, '')})\t"
                  f"total: {len(res):,}\tcorrect: {sum(res):,}\tacc: {acc:.1f}%")
        mean_acc = float(np.mean(accs))
        print(f"* average: {mean_acc:.1f}%")
        return mean_acc

    def save_confusion_matrix(self):
        from sklearn.metrics import confusion_matrix  # TEST.COMPUTE_CMAT only

        cmat = confusion_matrix(self.y_true, self.y_pred, normalize="true")
        path = os.path.join(self.cfg.OUTPUT_DIR, "cmat.pt")
        torch_save(torch.from_numpy(cmat), path)
        print(f"Confusion matrix is saved to {path}")
