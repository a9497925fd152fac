"""mAP@all on a large gallery: our chunked evaluator against a per-query scikit-learn loop.

    python scripts/bench_retrieval_map.py                              # 10k queries x 10k gallery, d 512, 100 classes
    python scripts/bench_retrieval_map.py --device cuda --chunk-size 1024
    python scripts/bench_retrieval_map.py --queries 2000 --gallery 5000 --subsample 100

Features are clustered (unit class centres + Gaussian noise), so the mAP is neither 0 nor 1. The
scikit-learn loop (one cosine row + ``average_precision_score`` per query) runs on
``--subsample`` queries and its time is scaled up to all queries; its APs are checked against
ours on those queries (float64 scores there, float32 in ours: near-ties may swap, ~1e-6 in AP).
Memory: the peak resident set above the one before our call (sampled from /proc), the process's
lifetime peak (ru_maxrss), on CUDA the peak allocated above the inputs, and the size of one
score block against the full score matrix it replaces.
"""
import argparse
import os
import resource
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainers.core.retrieval_evaluator import mean_average_precision  # noqa: E402

MIB = 2 ** 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def clustered(num, classes, dim, spread, generator):
    """(features, labels): ``num`` points around ``classes`` random unit centres (fixed by the generator)."""
    centres = F.normalize(torch.randn(classes, dim, generator=generator), dim=1)
    labels = torch.randint(classes, (num,), generator=generator)
    return centres[labels] + spread / dim ** 0.5 * torch.randn(num, dim, generator=generator), labels


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """Highest resident set size seen while the block runs (sampled every millisecond)."""

    def __enter__(self):
        self.start = self.peak = rss()
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss())


def timed_ours(queries, gallery, query_labels, gallery_labels, chunk_size):
    device = queries.device
    mean_average_precision(queries[:chunk_size], gallery, query_labels[:chunk_size], gallery_labels,
                           chunk_size=chunk_size)  # warm-up: kernels, allocator
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_cuda = torch.cuda.memory_allocated() if device.type == "cuda" else 0
    with PeakRSS() as memory:
        start = time.perf_counter()
        result = mean_average_precision(queries, gallery, query_labels, gallery_labels, chunk_size=chunk_size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    cuda_peak = torch.cuda.max_memory_allocated() - base_cuda if device.type == "cuda" else None
    return result, seconds, memory.peak - memory.start, cuda_peak


def timed_sklearn(queries, gallery, query_labels, gallery_labels):
    """AP per query the plain way: one cosine row and one ``average_precision_score`` per query."""
    q = F.normalize(queries.double(), dim=1).numpy()
    g = F.normalize(gallery.double(), dim=1).numpy()
    gallery_labels = gallery_labels.numpy()
    start = time.perf_counter()
    aps = [average_precision_score(gallery_labels == label, g @ row) for row, label in zip(q, query_labels.tolist())]
    return np.array(aps), time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--gallery", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--spread", type=float, default=3.0, help="noise norm around the unit class centres")
    parser.add_argument("--subsample", type=int, default=200, help="queries timed with scikit-learn")
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    generator = torch.Generator().manual_seed(args.seed)
    queries, query_labels = clustered(args.queries, args.classes, args.dim, args.spread, generator)
    generator.manual_seed(args.seed)  # the same centres for the gallery
    gallery, gallery_labels = clustered(args.gallery, args.classes, args.dim, args.spread, generator)
    device = torch.device(args.device)
    print(f"{args.queries:,} queries x {args.gallery:,} gallery items, d {args.dim}, {args.classes} classes, "
          f"float32 on {device} ({torch.get_num_threads()} CPU threads), chunk {args.chunk_size}")

    ours, seconds, rss_peak, cuda_peak = timed_ours(queries.to(device), gallery.to(device), query_labels.to(device),
                                                     gallery_labels.to(device), args.chunk_size)
    sub = min(args.subsample, args.queries)
    reference, sk_seconds = timed_sklearn(queries[:sub], gallery, query_labels[:sub], gallery_labels)
    sk_scaled = sk_seconds * args.queries / sub
    gap = np.nanmax(np.abs(ours.per_query[:sub].numpy() - reference))

    print(f"mAP@all ours {100 * ours.value:.2f}% ({ours.skipped} queries skipped); "
          f"max |AP ours - AP sklearn| on {sub} queries {gap:.1e}")
    print(f"time  ours            {seconds:9.2f} s")
    print(f"time  sklearn loop    {sk_scaled:9.2f} s  (measured {sk_seconds:.2f} s on {sub} queries, "
          f"x {args.queries / sub:g})")
    print(f"ratio sklearn / ours  {sk_scaled / seconds:9.1f} x")
    block, full = (n * args.gallery * 4 / MIB for n in (min(args.chunk_size, args.queries), args.queries))
    print(f"memory  one score block {block:.1f} MiB (full score matrix {full:.0f} MiB); peak RSS above the start "
          f"of our call {rss_peak / MIB:.1f} MiB; process peak (ru_maxrss) "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if cuda_peak is not None:
        print(f"memory  CUDA peak allocated above the inputs {cuda_peak / MIB:.1f} MiB")


if __name__ == "__main__":
    main()
