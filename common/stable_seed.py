"""Seeds derived from names, identical across runs, processes and machines (unlike ``hash``)."""
import hashlib


def stable_seed(*parts):
    """A 63-bit seed from a tuple of strings and numbers."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1
