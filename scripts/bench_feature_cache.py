"""What the feature cache's identity check and payload checksum cost, measured in one run.

    python scripts/bench_feature_cache.py                     # 50,000 files, a 50,000 x 1024 fp16 entry
    python scripts/bench_feature_cache.py --files 10000 --file-bytes 110000 --repeats 5

1. Identity of a warm ImageNet-size test split: ``--files`` small files in an ImageNet-like layout
   (1,000 class folders) are written to a temporary folder; after one warm-up pass, each way of
   building an entry's key is timed: relative paths only (the key before image identities), paths
   + ``stat`` identities (the default), paths + ``sha256`` identities (reads every byte). The files
   are tiny (``--file-bytes``), so the sha256 figure is mostly per-file overhead; the hash
   throughput is measured too, and the time for ImageNet's real val set (about 6.4 GB) is
   estimated from both and printed as an estimate.
2. Checksum on load: one entry of ``--rows`` x ``--dim`` fp16 features (with its 50,000 relative
   paths, as a real entry) is written with ``FeatureCache.save``, then read back from the page
   cache without the check (``torch.load``), with the checksum, and through ``FeatureCache.load``
   (every check: key, sample list, checksum; then the fp32 copy every caller gets).
Each figure is the median of ``--repeats`` runs. Nothing here is a test; it prints figures.
"""
import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainers.features.feature_cache import (  # noqa: E402
    FeatureCache,
    entry_key,
    file_identities,
    payload_checksum,
    read_entry,
)

IMAGENET_VAL_BYTES = 6.4e9  # ILSVRC2012 val: 50,000 JPEGs, about 6.4 GB


def timed(fn, repeats):
    """(median seconds, last result) of ``repeats`` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def write_split(folder, num_files, file_bytes):
    """ImageNet-like relative paths (``n<8 digits>/ILSVRC2012_val_<8 digits>.JPEG``) and the files."""
    relpaths = [f"n{i % 1000:08d}/ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(num_files)]
    payload = os.urandom(file_bytes)
    for d in {rel.split("/")[0] for rel in relpaths}:
        os.makedirs(os.path.join(folder, d))
    for rel in relpaths:
        with open(os.path.join(folder, rel), "wb") as f:
            f.write(payload[:-8] + rel[-13:-5].encode())  # distinct bytes per file
    return relpaths


def bench_identity(args, folder):
    relpaths = write_split(folder, args.files, args.file_bytes)
    paths = [os.path.join(folder, rel) for rel in relpaths]
    common = dict(kind="image", backbone="0" * 64, dataset="ImageNet", split="test", transform="eval",
                  precision="fp16")
    file_identities(paths, "sha256")  # warm-up: dentries and file pages in memory, as on a second run

    def key_of(mode):
        if mode is None:
            return lambda: entry_key(paths=relpaths, **common)
        return lambda: entry_key(paths=relpaths, image_identity=mode, files=file_identities(paths, mode), **common)

    base, _ = timed(key_of(None), args.repeats)
    stat, _ = timed(key_of("stat"), args.repeats)
    stat_only, _ = timed(lambda: file_identities(paths, "stat"), args.repeats)
    sha, _ = timed(key_of("sha256"), args.repeats)
    block = os.urandom(256 * 2 ** 20)
    hash_s, _ = timed(lambda: hashlib.sha256(block).digest(), args.repeats)
    throughput = len(block) / hash_s
    n = args.files
    print(f"Identity of a warm split of {n:,} files ({args.file_bytes:,} bytes each), median of {args.repeats}:")
    print(f"  key from relative paths only (no identity): {base * 1e3:8.1f} ms")
    print(f"  key with stat identities (default):         {stat * 1e3:8.1f} ms  (stat alone {stat_only * 1e3:.1f} ms, "
          f"{stat_only / n * 1e6:.2f} us/file; x{stat / base:.1f} the path-only key)")
    print(f"  key with sha256 identities:                 {sha * 1e3:8.1f} ms  (x{sha / base:.1f} the path-only key)")
    print(f"  sha256 throughput: {throughput / 1e9:.2f} GB/s; estimated sha256 identity of ImageNet's val set "
          f"(~{IMAGENET_VAL_BYTES / 1e9:.1f} GB, from page cache): {sha + IMAGENET_VAL_BYTES / throughput:.1f} s")


def bench_checksum(args, folder):
    relpaths = [f"n{i % 1000:08d}/ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(args.rows)]
    features = torch.randn(args.rows, args.dim, generator=torch.Generator().manual_seed(0))
    cache = FeatureCache(folder)
    key = entry_key(bench=True)
    cache.save("ImageNet", "test-eval", key, relpaths, features, meta={})
    path = cache.entry_path("ImageNet", "test-eval", key)
    read_entry(path)  # warm-up: the file in the page cache

    def load_and_check():
        entry = read_entry(path)
        assert entry["checksum"] == payload_checksum(entry["features"])
        return entry

    plain, entry = timed(lambda: read_entry(path), args.repeats)
    checked, _ = timed(load_and_check, args.repeats)
    checksum, _ = timed(lambda: payload_checksum(entry["features"]), args.repeats)
    full, _ = timed(lambda: cache.load("ImageNet", "test-eval", key, relpaths), args.repeats)
    size = os.path.getsize(path)
    print(f"Loading one {args.rows:,} x {args.dim} fp16 entry ({size / 2 ** 20:.0f} MiB on disk), "
          f"median of {args.repeats}:")
    print(f"  torch.load, no check:                       {plain * 1e3:8.1f} ms")
    print(f"  torch.load + sha256 checksum:               {checked * 1e3:8.1f} ms  (x{checked / plain:.2f}; "
          f"the checksum alone {checksum * 1e3:.1f} ms)")
    print(f"  FeatureCache.load (all checks + fp32 copy): {full * 1e3:8.1f} ms  (x{full / plain:.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=50_000, help="files in the simulated test split")
    parser.add_argument("--file-bytes", type=int, default=512, help="size of each file")
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the cache entry")
    parser.add_argument("--dim", type=int, default=1024, help="feature dimension of the cache entry")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", default=None, help="where the temporary files go (default: the system's)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s)")
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        bench_identity(args, os.path.join(folder, "split"))
        bench_checksum(args, os.path.join(folder, "cache"))


if __name__ == "__main__":
    main()
