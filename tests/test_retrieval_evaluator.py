"""Retrieval mAP: equal to scikit-learn's average precision per query (the same tie rule), to a
direct mAP@k, to hand-computed values with ties; chunking changes nothing; the result block parses
with CoOp's regex and the JSON is written."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

from conftest import coop_parse
from trainers.core import retrieval_evaluator
from trainers.core.config import get_cfg_default
from trainers.core.retrieval_evaluator import RESULTS_FILE, Retrieval, mean_average_precision


def random_retrieval(num_queries, num_gallery, num_classes, dim=16, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=g)
    query_labels = torch.randint(num_classes, (num_queries,), generator=g)
    gallery_labels = torch.randint(num_classes, (num_gallery,), generator=g)
    queries = centers[query_labels] + 1.5 * torch.randn(num_queries, dim, generator=g)
    gallery = centers[gallery_labels] + 1.5 * torch.randn(num_gallery, dim, generator=g)
    return queries.to(dtype), gallery.to(dtype), query_labels, gallery_labels


def cosine(queries, gallery):
    return (F.normalize(queries.double(), dim=1) @ F.normalize(gallery.double(), dim=1).t()).numpy()


def sklearn_ap(queries, gallery, query_labels, gallery_labels):
    """AP per query by scikit-learn (NaN where no gallery item is relevant)."""
    scores = cosine(queries, gallery)
    relevant = query_labels[:, None].numpy() == gallery_labels[None, :].numpy()
    return np.array([average_precision_score(rel, s) if rel.any() else np.nan for rel, s in zip(relevant, scores)])


def direct_ap_at_k(scores, relevant, k):
    """AP@k of one query without ties: sum of precision@i at relevant ranks i <= k, / min(k, R)."""
    ranked = relevant[np.argsort(-scores, kind="stable")][:k]
    hits = np.cumsum(ranked)
    return float(np.sum(ranked * hits / np.arange(1, len(ranked) + 1)) / min(k, relevant.sum()))


@pytest.mark.parametrize("num_queries, num_gallery, num_classes, chunk_size", [
    (37, 53, 4, 8),     # several chunks, a ragged last one
    (37, 53, 4, 100),   # one chunk larger than the query count
    (120, 90, 7, 1),    # one query per chunk
    (64, 257, 12, 64),  # one chunk exactly
    (64, 40, 30, 16),   # queries whose class is absent from the gallery (18 / 4 per direction)
])
def test_map_equals_sklearn_in_both_directions(num_queries, num_gallery, num_classes, chunk_size):
    queries, gallery, qy, gy = random_retrieval(num_queries, num_gallery, num_classes, seed=num_queries)
    for q, g, q_labels, g_labels in [(queries, gallery, qy, gy), (gallery, queries, gy, qy)]:
        expected = sklearn_ap(q, g, q_labels, g_labels)
        result = mean_average_precision(q, g, q_labels, g_labels, chunk_size=chunk_size)
        np.testing.assert_allclose(result.per_query.numpy(), expected, rtol=0, atol=1e-12)
        assert result.value == pytest.approx(np.nanmean(expected), abs=1e-12)
        assert result.skipped == int(np.isnan(expected).sum())
        assert result.num_queries == len(q)


def copies_of_six_vectors(dtype=torch.float64):
    """40 queries and 70 gallery items, each a copy of one of 6 distinct vectors (4 labels), and
    the scikit-learn AP of every query on exact ties: each score computed once per distinct
    pair of vectors, so copies share it bit for bit whatever the BLAS."""
    g = torch.Generator().manual_seed(11)
    distinct = torch.randn(6, 8, dtype=torch.float64, generator=g)
    qi, gi = torch.randint(6, (40,), generator=g), torch.randint(6, (70,), generator=g)
    qy, gy = torch.randint(4, (40,), generator=g), torch.randint(4, (70,), generator=g)
    exact = cosine(distinct, distinct)[qi][:, gi]
    assert np.diff(np.unique(exact.round(12))).min() > 1e-3  # distinct pairs are far from tying
    relevant = qy[:, None].numpy() == gy[None, :].numpy()
    expected = np.array([average_precision_score(rel, row) for rel, row in zip(relevant, exact)])
    return distinct[qi].to(dtype), distinct[gi].to(dtype), qy, gy, expected


def test_map_with_many_ties_equals_sklearn_on_exact_ties():
    queries, gallery, qy, gy, expected = copies_of_six_vectors()
    result = mean_average_precision(queries, gallery, qy, gy, chunk_size=9)
    np.testing.assert_allclose(result.per_query.numpy(), expected, rtol=0, atol=1e-12)
    for perm in (torch.randperm(70, generator=torch.Generator().manual_seed(s)) for s in range(3)):
        shuffled = mean_average_precision(queries, gallery[perm], qy, gy[perm], chunk_size=9)
        np.testing.assert_allclose(shuffled.per_query.numpy(), expected, rtol=0, atol=1e-12)
    single = mean_average_precision(queries, gallery.float(), qy, gy, chunk_size=7)  # float32 scores
    np.testing.assert_allclose(single.per_query.numpy(), expected, rtol=0, atol=1e-12)
    scaled = gallery * 2.0 ** torch.randint(-3, 4, (70, 1), generator=torch.Generator().manual_seed(4))  # v, 2v, ...
    np.testing.assert_allclose(mean_average_precision(queries, scaled, qy, gy).per_query.numpy(), expected,
                               rtol=0, atol=1e-12)


def test_ties_do_not_depend_on_the_matrix_multiply(monkeypatch):
    """A BLAS that rounds every dot product its own way (here: +-1e-7 noise on each score, or
    the features' dimensions summed in another order) leaves copies tied: each distinct vector
    is scored once. Without that, the same noise on every gallery column moves the AP."""
    queries, gallery, qy, gy, expected = copies_of_six_vectors()
    noise = torch.Generator().manual_seed(5)

    def noisy_similarity(q, g):
        scores = q @ g.t()
        return scores + 1e-7 * (2 * torch.rand(scores.shape, generator=noise, dtype=scores.dtype) - 1)

    monkeypatch.setattr(retrieval_evaluator, "similarity", noisy_similarity)
    for perm in (torch.arange(70), torch.randperm(70, generator=torch.Generator().manual_seed(1))):
        result = mean_average_precision(queries, gallery[perm], qy, gy[perm], chunk_size=9)
        np.testing.assert_allclose(result.per_query.numpy(), expected, rtol=0, atol=1e-12)
    dims = torch.randperm(8, generator=torch.Generator().manual_seed(2))  # another summation order
    reordered = mean_average_precision(queries[:, dims], gallery[:, dims], qy, gy, chunk_size=9)
    np.testing.assert_allclose(reordered.per_query.numpy(), expected, rtol=0, atol=1e-12)

    per_column = noisy_similarity(F.normalize(queries, dim=1), F.normalize(gallery, dim=1)).numpy()
    relevant = qy[:, None].numpy() == gy[None, :].numpy()
    untied = np.array([average_precision_score(rel, row) for rel, row in zip(relevant, per_column)])
    assert np.abs(untied - expected).max() > 1e-3  # the failure this rule prevents


def test_float32_features_match_float64_reference():
    queries, gallery, qy, gy = random_retrieval(50, 70, 5, seed=3, dtype=torch.float32)
    result = mean_average_precision(queries, gallery, qy, gy, chunk_size=16)
    assert result.value == pytest.approx(np.nanmean(sklearn_ap(queries, gallery, qy, gy)), abs=1e-6)


def test_chunk_size_does_not_change_the_result():
    queries, gallery, qy, gy = random_retrieval(100, 80, 6, seed=5)
    reference = mean_average_precision(queries, gallery, qy, gy, chunk_size=1000).per_query
    for chunk_size in (1, 7, 33, 100):
        per_query = mean_average_precision(queries, gallery, qy, gy, chunk_size=chunk_size).per_query
        torch.testing.assert_close(per_query, reference, rtol=0, atol=1e-14)  # sums of other lengths: last bits


# A query at [1, 0] and a gallery scoring 1, 1, 0, 0, -1 (two tie groups), relevant items marked 1.
TIE_QUERY = torch.tensor([[1.0, 0.0]])
TIE_GALLERY = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [-1.0, 0.0]])
TIE_RELEVANT = torch.tensor([0, 1, 1, 0, 1])


def test_ties_share_the_precision_at_the_end_of_their_group():
    # groups {0, 1}: 1 hit in 2 ranks -> 1/2; {2, 3}: 2 hits in 4 -> 2/4; {4}: 3 hits in 5 -> 3/5
    by_hand = (1 / 2 + 2 / 4 + 3 / 5) / 3
    result = mean_average_precision(TIE_QUERY, TIE_GALLERY, torch.tensor([1]), TIE_RELEVANT)
    assert result.value == pytest.approx(by_hand, abs=1e-12)
    assert result.value == pytest.approx(np.nanmean(sklearn_ap(TIE_QUERY, TIE_GALLERY, torch.tensor([1]),
                                                               TIE_RELEVANT)), abs=1e-12)
    assert result.value != pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3)  # not "ties by gallery index"
    for permutation in ([4, 3, 2, 1, 0], [1, 0, 3, 2, 4], [2, 4, 0, 3, 1]):  # independent of gallery order
        permuted = mean_average_precision(TIE_QUERY, TIE_GALLERY[permutation], torch.tensor([1]),
                                          TIE_RELEVANT[permutation])
        assert permuted.value == pytest.approx(by_hand, abs=1e-12)


@pytest.mark.parametrize("k, by_hand", [
    (1, (0.5 * 0.5) / 1),                  # group {0, 1} cut after 1 of 2: share 1/2 of a hit at precision 0.5/1
    (2, (1 / 2) / 2),                      # group {0, 1} whole: one hit at precision 1/2; min(k, R) = 2
    (3, (1 / 2 + 0.5 * (1 + 0.5) / 3) / 3),  # group {2, 3} cut after 1 of 2: share 1/2 at precision 1.5/3
    (4, (1 / 2 + 2 / 4) / 3),
    (5, (1 / 2 + 2 / 4 + 3 / 5) / 3),      # = mAP@all
    (50, (1 / 2 + 2 / 4 + 3 / 5) / 3),
])
def test_map_at_k_with_ties_by_hand(k, by_hand):
    result = mean_average_precision(TIE_QUERY, TIE_GALLERY, torch.tensor([1]), TIE_RELEVANT, k=k)
    assert result.value == pytest.approx(by_hand, abs=1e-12)


@pytest.mark.parametrize("k", [1, 5, 20, 89, 90, 500])
def test_map_at_k_equals_a_direct_implementation(k):
    queries, gallery, qy, gy = random_retrieval(45, 90, 6, seed=k)
    scores = cosine(queries, gallery)
    relevant = qy[:, None].numpy() == gy[None, :].numpy()
    expected = [direct_ap_at_k(s, rel, k) for s, rel in zip(scores, relevant) if rel.any()]
    result = mean_average_precision(queries, gallery, qy, gy, k=k, chunk_size=10)
    assert result.value == pytest.approx(np.mean(expected), abs=1e-12)


def test_perfect_and_worst_rankings():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    one_hot = F.one_hot(labels).double()
    assert mean_average_precision(one_hot, one_hot, labels, labels).value == pytest.approx(1.0)
    assert mean_average_precision(one_hot, one_hot, labels, labels, k=2).value == pytest.approx(1.0)
    # worst: the 3 relevant items of a 10-item gallery ranked last -> (1/8 + 2/9 + 3/10) / 3
    query = torch.tensor([[1.0, 0.0]])
    gallery = torch.tensor([[np.cos(a), np.sin(a)] for a in np.linspace(0, 3, 10)])
    relevant = torch.tensor([0] * 7 + [1] * 3)
    worst = mean_average_precision(query, gallery, torch.tensor([1]), relevant)
    assert worst.value == pytest.approx((1 / 8 + 2 / 9 + 3 / 10) / 3, abs=1e-12)
    assert mean_average_precision(query, gallery, torch.tensor([1]), relevant, k=7).value == 0.0


def test_queries_without_relevant_items_are_skipped_and_counted():
    queries, gallery, qy, gy = random_retrieval(20, 30, 3, seed=9)
    qy[:4] = 99  # a class the gallery lacks
    result = mean_average_precision(queries, gallery, qy, gy, chunk_size=3)
    assert result.skipped == 4 and result.num_queries == 20
    assert result.per_query[:4].isnan().all() and not result.per_query[4:].isnan().any()
    assert result.value == pytest.approx(result.per_query[4:].mean().item(), abs=1e-12)
    with pytest.raises(ValueError, match="none of the 20 queries"):
        mean_average_precision(queries, gallery, torch.full((20,), 99), gy)


@pytest.mark.parametrize("change, message", [
    (dict(gallery=torch.zeros(30, 15)), "one d"),
    (dict(query_labels=torch.zeros(19)), "labels do not match"),
    (dict(queries=torch.full((20, 16), float("nan"))), "NaN"),
    (dict(k=0), "k must be"),
    (dict(chunk_size=0), "chunk_size"),
])
def test_bad_input_is_named(change, message):
    queries, gallery, qy, gy = random_retrieval(20, 30, 3)
    args = dict(queries=queries, gallery=gallery, query_labels=qy, gallery_labels=gy) | change
    with pytest.raises(ValueError, match=message):
        mean_average_precision(**args)


def evaluate_pairs(tmp_path, images, texts, labels, k=None, batch=7):
    cfg = get_cfg_default()
    cfg.OUTPUT_DIR = str(tmp_path)
    evaluator = Retrieval(cfg, k=k, chunk_size=5)
    for i in range(0, len(labels), batch):
        evaluator.process(images[i:i + batch], texts[i:i + batch], labels[i:i + batch])
    return evaluator.evaluate()


def test_retrieval_block_json_and_return_value(tmp_path, capsys):
    images, texts, labels, _ = random_retrieval(40, 40, 4, seed=2)
    texts = images + 0.8 * torch.randn(40, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    results = evaluate_pairs(tmp_path, images, texts, labels)
    i2t = mean_average_precision(images, texts, labels, labels).value * 100
    t2i = mean_average_precision(texts, images, labels, labels).value * 100
    assert list(results) == ["mAP", "i2t_mAP", "t2i_mAP"]
    assert results["i2t_mAP"] == pytest.approx(i2t) and results["t2i_mAP"] == pytest.approx(t2i)
    assert results["mAP"] == pytest.approx((i2t + t2i) / 2)

    log = capsys.readouterr().out
    assert log.splitlines() == ["=> result", "* total: 40", f"* i2t_mAP: {i2t:.2f}%", f"* t2i_mAP: {t2i:.2f}%",
                                f"* mAP: {(i2t + t2i) / 2:.2f}%"]
    for keyword, value in results.items():
        assert coop_parse(log, end_signal="=> result", keyword=keyword) == pytest.approx(value, abs=0.005)

    saved = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert saved["split"] == "test" and saved["metric"] == "mAP@all" and saved["k"] is None
    assert saved["total_pairs"] == 40 and saved["i2t_queries"] == saved["t2i_queries"] == 40
    assert saved["i2t_skipped_queries"] == saved["t2i_skipped_queries"] == 0
    assert {key: saved[key] for key in results} == pytest.approx(dict(results), abs=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == [RESULTS_FILE]  # no temporary file left behind


def test_retrieval_at_k_is_recorded(tmp_path, capsys):
    images, texts, labels, _ = random_retrieval(30, 30, 3, seed=4)
    results = evaluate_pairs(tmp_path, images, texts, labels, k=5)
    assert "* k: 5" in capsys.readouterr().out.splitlines()
    assert results["i2t_mAP"] == pytest.approx(mean_average_precision(images, texts, labels, labels, k=5).value * 100)
    saved = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert saved["metric"] == "mAP@5" and saved["k"] == 5


def test_evaluate_without_pairs_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        Retrieval(get_cfg_default()).evaluate()
