"""Cross-modal retrieval evaluator: mAP@all (or mAP@k) by cosine similarity, image->text,
text->image and their mean, printed as a Dassl-shaped result block and saved as JSON.

Relevance is "same class label". Scores are computed for one block of ``chunk_size`` queries
at a time, so a 10k x 10k gallery never holds more than one ``chunk_size x N`` block of scores
(plus its sorted copy, the sort order and a relevance mask: about 18 bytes per score). Copies of
one gallery vector are scored once, so they tie exactly on every machine (see the tie rule).
"""
import os
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F

from common.atomic_io import write_json

DEFAULT_CHUNK_SIZE = 256  # 256 x 10k scores: 10 MB of float32, about 45 MB with their companions
RESULTS_FILE = "retrieval_results.json"


class MeanAP(NamedTuple):
    """``value``: mean AP in [0, 1] over the scored queries; ``per_query``: float64 AP per query
    (NaN where skipped); ``skipped``: queries with no relevant gallery item (left out of the mean)."""

    value: float
    per_query: torch.Tensor
    num_queries: int
    skipped: int


def mean_average_precision(queries, gallery, query_labels, gallery_labels, k=None, chunk_size=DEFAULT_CHUNK_SIZE):
    """Mean over queries of the average precision of the gallery ranked by cosine similarity.

    AP@k = (sum of precision@i over the relevant items at ranks i <= k) / min(k, R), R = number of
    relevant gallery items; k=None (or k >= N) is AP@all = that sum over all ranks / R. Dividing by
    min(k, R) (the common mAP@k, e.g. in hashing / cross-modal retrieval code) makes a perfect
    ranking score 1 for every k; dividing by R would cap a query with R > k at k / R.

    Ties: items of equal score form one group ranked at once, so each relevant item of a group
    gets the precision at the group's last rank (hits up to and including the group / its size).
    This is scikit-learn's ``average_precision_score`` rule (one threshold per distinct score);
    it makes the result independent of the gallery's order. Which scores are equal must not
    depend on the matrix-multiply library: one that blocks, fuses (FMA) or splits the sum over
    threads differently can give two copies of one gallery vector scores a few 1e-7 apart, and
    exact equality would then rank them apart (4 of 40 queries off by up to 0.003 AP on one
    machine). So ties come from the features: gallery items with identical vectors (as given,
    or after L2 normalisation, so ``v`` and ``2v`` are copies) are scored once per query and
    share that score bit for bit; other items tie when their scores are exactly equal. A score
    tolerance (e.g. 1e-6) was rejected: it also merges distinct items whose cosines happen to
    lie close (common in a 10k gallery; one query of a random 257-item float64 gallery moved by
    0.001 AP), so results without duplicates would no longer be scikit-learn's.
    With a cutoff k inside a tie group,
    the group contributes the share of its relevant items that fits, r * m / n (m of its n items
    lie at ranks <= k), at precision (hits before the group + r * m / n) / k; with no ties this is
    exactly the definition above.

    Queries with no relevant item have no AP: they are skipped (NaN in ``per_query``), counted in
    ``skipped`` and left out of the mean; if every query is skipped a ValueError is raised.
    Work runs on the device of ``queries``; float32 (float64 if an input is float64) scores,
    float64 precisions and sums.
    """
    queries, gallery, query_labels, gallery_labels = _checked(queries, gallery, query_labels, gallery_labels)
    if k is not None and k < 1:
        raise ValueError(f"k must be a positive number of gallery items or None (mAP@all), got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    cutoff = gallery.shape[0] if k is None else min(int(k), gallery.shape[0])
    queries = F.normalize(queries, dim=1)
    distinct, copy_of = distinct_vectors(gallery)
    per_query = torch.cat([
        _average_precision(similarity(queries[i:i + chunk_size], distinct)[:, copy_of],
                           query_labels[i:i + chunk_size], gallery_labels, cutoff)
        for i in range(0, queries.shape[0], chunk_size)])
    scored = ~per_query.isnan()
    if not scored.any():
        raise ValueError(f"none of the {len(per_query)} queries has a relevant gallery item (same label): "
                         "mAP is undefined")
    return MeanAP(per_query[scored].mean().item(), per_query.cpu(), len(per_query), int((~scored).sum()))


def similarity(queries, gallery):
    """Cosine scores of L2-normalised rows: ``queries @ gallery^T`` (whatever BLAS torch uses)."""
    return queries @ gallery.t()


def distinct_vectors(gallery):
    """``(distinct, copy_of)``: the L2-normalised distinct rows of ``gallery`` and, per gallery
    row, the index of its distinct row (``distinct[copy_of]`` is the normalised gallery).
    Identical rows are merged before normalising (so no normalisation rounding can set them
    apart) and again after (so ``v`` and ``2v`` merge when they normalise alike)."""
    raw, copy_of = torch.unique(gallery, dim=0, return_inverse=True)
    distinct, merged = torch.unique(F.normalize(raw, dim=1), dim=0, return_inverse=True)
    return distinct, merged[copy_of]


def _checked(queries, gallery, query_labels, gallery_labels):
    """Validate shapes and values, move everything to the queries' device in one float dtype."""
    if queries.dim() != 2 or gallery.dim() != 2 or queries.shape[1] != gallery.shape[1]:
        raise ValueError(f"queries and gallery must be (n, d) and (N, d) with one d, got {tuple(queries.shape)} "
                         f"and {tuple(gallery.shape)}")
    if queries.shape[0] == 0 or gallery.shape[0] == 0:
        raise ValueError(f"empty retrieval: {queries.shape[0]} queries, {gallery.shape[0]} gallery items")
    device = queries.device
    query_labels = torch.as_tensor(query_labels, device=device).reshape(-1)
    gallery_labels = torch.as_tensor(gallery_labels, device=device).reshape(-1)
    if len(query_labels) != queries.shape[0] or len(gallery_labels) != gallery.shape[0]:
        raise ValueError(f"labels do not match the features: {len(query_labels)} query labels for "
                         f"{queries.shape[0]} queries, {len(gallery_labels)} gallery labels for "
                         f"{gallery.shape[0]} items")
    dtype = torch.float64 if torch.float64 in (queries.dtype, gallery.dtype) else torch.float32
    queries, gallery = queries.detach().to(device, dtype), gallery.detach().to(device, dtype)
    if not (queries.isfinite().all() and gallery.isfinite().all()):
        raise ValueError("features contain NaN or inf")
    return queries, gallery, query_labels, gallery_labels


def _average_precision(scores, query_labels, gallery_labels, cutoff):
    """AP@cutoff of each row of a (chunk, N) score block under the tie rule above; NaN if R = 0.

    After one sort per row only the relevant items are visited: for each, the rank at which its
    tie group ends and the hits up to there come from binary searches (groups are runs of equal
    scores in the sorted row), so ties cost nothing extra.
    """
    relevant = gallery_labels[None, :] == query_labels[:, None]
    ranked, order = scores.sort(dim=1, descending=True)
    del scores
    relevant = relevant.gather(1, order)
    del order
    ranked = ranked.neg_()  # ascending, for searchsorted
    rows, ranks = relevant.nonzero(as_tuple=True)  # relevant ranks, ascending within each row
    total = relevant.sum(dim=1)
    del relevant
    # per row, its relevant items side by side (padded to the longest row): rank and score
    slot = torch.arange(len(rows), device=rows.device) - (total.cumsum(0) - total)[rows]
    width = max(int(total.max()), 1)
    valid = torch.arange(width, device=rows.device) < total[:, None]
    relevant_ranks = torch.full((len(total), width), ranked.shape[1], device=rows.device)  # pad: past the end
    relevant_ranks[rows, slot] = ranks
    own_scores = ranked.new_zeros((len(total), width))
    own_scores[rows, slot] = ranked[rows, ranks]

    def hits_before(rank):  # relevant items ranked before ``rank`` (rows x any)
        return torch.searchsorted(relevant_ranks, rank)

    group_end = torch.searchsorted(ranked, own_scores, right=True)  # = items scoring >= the item
    precision = hits_before(group_end).double() / group_end
    ap_sum = (precision * (valid & (group_end <= cutoff))).sum(dim=1)
    total = total.double()
    if cutoff < ranked.shape[1]:  # the tie group cut by k counts by its share (docstring)
        last = ranked[:, cutoff - 1:cutoff].contiguous()
        start, end = torch.searchsorted(ranked, last), torch.searchsorted(ranked, last, right=True)
        before = hits_before(start).double()
        share = (hits_before(end) - before) * (cutoff - start) / (end - start)
        ap_sum += torch.where(end > cutoff, share * (before + share) / cutoff, torch.zeros_like(share)).squeeze(1)
        total = total.clamp(max=cutoff)
    return torch.where(total > 0, ap_sum / total, torch.full_like(total, float("nan")))


class Retrieval:
    """Image->text and text->image mAP of paired test embeddings, shaped like ``Classification``:
    ``reset`` / ``process(image_features, text_features, labels)`` per batch / ``evaluate``.

    The block prints two decimals: retrieval papers report mAP as 0.xxx (one decimal in %), and
    the second keeps CoOp's ``parse_test_res`` mean over seeds free of rounding. ``evaluate``
    returns ``mAP`` first (TrainerBase.test returns the first value).
    """

    def __init__(self, cfg, k=None, chunk_size=DEFAULT_CHUNK_SIZE):
        self.cfg = cfg
        self.k = k
        self.chunk_size = chunk_size
        self.reset()

    def reset(self):
        self.images, self.texts, self.labels = [], [], []

    def process(self, image_features, text_features, labels):
        if not len(image_features) == len(text_features) == len(labels):
            raise ValueError(f"a batch of pairs needs as many images ({len(image_features)}), texts "
                             f"({len(text_features)}) and labels ({len(labels)})")
        self.images.append(image_features.detach())
        self.texts.append(text_features.detach())
        self.labels.append(torch.as_tensor(labels).detach())

    def evaluate(self, split=None):
        if not self.labels:
            raise ValueError("nothing to evaluate: the split is empty")
        split = split or self.cfg.TEST.SPLIT
        images, texts = torch.cat(self.images), torch.cat(self.texts)
        labels = torch.cat([label.to(images.device) for label in self.labels])
        directions = OrderedDict(
            i2t=mean_average_precision(images, texts, labels, labels, self.k, self.chunk_size),
            t2i=mean_average_precision(texts, images, labels, labels, self.k, self.chunk_size))
        results = OrderedDict(mAP=50.0 * (directions["i2t"].value + directions["t2i"].value))
        for name, result in directions.items():
            results[f"{name}_mAP"] = 100.0 * result.value
        cutoff = "" if self.k is None else f"* k: {self.k}\n"
        print("=> result\n"
              f"* total: {len(labels):,}\n{cutoff}"
              f"* i2t_mAP: {results['i2t_mAP']:.2f}%\n"
              f"* t2i_mAP: {results['t2i_mAP']:.2f}%\n"
              f"* mAP: {results['mAP']:.2f}%")
        self.save(results, directions, split, len(labels))
        return results

    def save(self, results, directions, split, total):
        """``<OUTPUT_DIR>/retrieval_results.json``: the figures (%) at full precision and their setting."""
        record = OrderedDict(split=split, metric="mAP@all" if self.k is None else f"mAP@{self.k}", k=self.k,
                             similarity="cosine", total_pairs=total, **results)
        for name, result in directions.items():
            record[f"{name}_queries"] = result.num_queries
            record[f"{name}_skipped_queries"] = result.skipped
        write_json(record, os.path.join(self.cfg.OUTPUT_DIR, RESULTS_FILE))
