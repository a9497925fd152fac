"""A fixed thread count for the numerically sensitive part of a run.

Parallel kernels split a reduction or a GEMM by the thread count, so a result's last bits can
change with it (torch's intra-op pool, numpy's OpenBLAS, scikit-learn's OpenMP loops); an
optimiser or a search then carries such a difference into a visible one. Running that part on
a fixed count makes a seeded run bit-identical whatever the machine's cores, OMP_NUM_THREADS or
the launcher's core split say. It is also faster for small problems: on 2 cores, OpenBLAS on 2
threads fits a 512 x 128 logistic regression 12x slower than on 1 (scripts/bench_scale.py and
the README's "Speed at ImageNet size" have the figures).
"""
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


@contextmanager
def fixed_threads(count):
    """Run the block on ``count`` threads in torch's intra-op pool and in the BLAS / OpenMP pools
    numpy and scikit-learn use (``count`` <= 0: leave every setting as it is), then restore them."""
    if count <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(before)
