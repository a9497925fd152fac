"""Datum: one labelled sample, as in Dassl (``impath`` absolute, ``domain`` kept for Dassl)."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Datum:
    impath: str
    label: int
    classname: str = ""
    domain: int = 0
