"""SHA-256 of a file's bytes, read in blocks: the one reader behind split-file digests, image
identities (FEATURES.IMAGE_IDENTITY sha256) and weights digests. Generic, so it sits at the bottom."""
import hashlib


def file_sha256(path, block_size=1 << 20):
    digest = hashlib.sha256()  # hashlib.file_digest needs Python 3.11; we support 3.10
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()
