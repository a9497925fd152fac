"""A run folder's ``provenance.json`` (written by trainers/core/run_provenance.py), read for the tables:
which split the run used and under which protocol it chose its hyper-parameters; and the rule that
says whether a cell of such runs is the experiment of a published row (``caveats_of``).

A folder without the file (a run older than the record, a plugin run through Dassl's train.py
eval-only path) or with an unreadable one has unknown provenance: a table prints no delta for it
unless asked to (``--compare-anyway``), and says so.
"""
import json
import os
from dataclasses import dataclass

from reports.published import UNKNOWN_PROTOCOL
from trainers.core.run_provenance import budget_text

PROVENANCE_FILE = "provenance.json"  # trainers.core.run_provenance.PROVENANCE_FILE
UNKNOWN = "unknown"
DIFFERS, NO_RECORD = "†", "?"  # cell marks
LEGEND = {DIFFERS: "split rebuilt or generated, a selection protocol other than the published row's, a step "
                   "budget (OPTIM.MAX_STEPS), or seeds that differ in any of these: not the published experiment",
          NO_RECORD: "some seeds have no provenance.json (runs older than the record, or plugin eval-only "
                     "runs): split and protocol unknown"}


@dataclass(frozen=True)
class RunProvenance:
    origin: str  # published | rebuilt | generated | unknown
    protocol: str  # strict | full_val | lpclip | unknown
    split_file: str | None = None  # the split file's name, when the run read one
    problem: str = ""  # why the provenance is unknown ("" when it was read)
    budget: str = ""  # how OPTIM.MAX_STEPS cut the recipe's epochs ("" = the recipe)

    @property
    def known(self):
        return not self.problem


def read_provenance(folder):
    """The provenance of the run in ``folder``; unknown (with the reason) when the file is absent or
    does not hold a split origin and a selection protocol."""
    path = os.path.join(folder, PROVENANCE_FILE)
    if not os.path.isfile(path):
        return RunProvenance(UNKNOWN, UNKNOWN, problem=f"no {PROVENANCE_FILE}")
    try:
        with open(path) as f:
            record = json.load(f)
        split, selection, cut = record["split"], record["selection"], record.get("step_budget")
        return RunProvenance(str(split["origin"]), str(selection["protocol"]), split.get("file"),
                             budget=budget_text(cut) if cut else "")
    except (OSError, ValueError, KeyError, TypeError) as e:
        return RunProvenance(UNKNOWN, UNKNOWN, problem=f"unreadable {PROVENANCE_FILE} ({e!r})")


@dataclass(frozen=True)
class CellProvenance:
    """What a cell's seeds were computed from: the distinct split origins and protocols their
    provenance.json records hold (an origin may be recorded as ``unknown``: Dassl's datasets in
    plugin mode), the split files of rebuilt splits, the number of seeds without a readable
    record, the number of seeds, and the distinct step budgets ("" for the recipe's epochs)."""
    origins: tuple = ()
    protocols: tuple = ()
    rebuilt_files: tuple = ()
    unknown: int = 0
    seeds: int = 0
    budgets: tuple = ()

    @classmethod
    def of(cls, runs):
        """From ``reports.provenance.RunProvenance`` records, one per seed."""
        known = [r for r in runs if r.known]
        return cls(tuple(sorted({r.origin for r in known})), tuple(sorted({r.protocol for r in known})),
                   tuple(sorted({r.split_file or "?" for r in known if r.origin == "rebuilt"})),
                   len(runs) - len(known), len(runs), tuple(sorted({r.budget for r in known})))

    @classmethod
    def merge(cls, cells):
        """The provenance of an average over ``cells``."""
        return cls(*(tuple(sorted({x for c in cells for x in getattr(c, name)}))
                     for name in ("origins", "protocols", "rebuilt_files")),
                   sum(c.unknown for c in cells), sum(c.seeds for c in cells),
                   tuple(sorted({b for c in cells for b in c.budgets})))

    def text(self):
        """``published, strict``; several values joined by ``+`` (seeds that differ); seeds
        without a record counted as ``n without record``; a step budget named."""
        parts = [f"{'+'.join(self.origins)}, {'+'.join(self.protocols)}"] if self.origins else []
        if any(self.budgets):
            parts += [f"budget {b}" if b else "recipe epochs" for b in self.budgets]
        if self.unknown:
            parts.append(f"{self.unknown} without record")
        return "; ".join(parts)


def caveats_of(prov, published):
    """``[(mark, why)]``: why the cell is not the experiment of ``published`` (a PublishedValue, or
    None); without a published row only a rebuilt or mixed split is a caveat. ``mark`` is "" for a
    caveat that is not about our runs (the published row's own protocol is unknown)."""
    out = []
    origins, protocols = list(prov.origins), list(prov.protocols)
    if prov.unknown and published is not None:
        out.append((NO_RECORD, f"{prov.unknown} of {prov.seeds} seed run(s) have no readable provenance.json: "
                               "split and protocol unknown"))
    if "rebuilt" in origins:
        out.append((DIFFERS, f"split rebuilt from the raw annotations ({', '.join(prov.rebuilt_files)}), "
                             "not the published split file"))
    elif len(origins) > 1:
        out.append((DIFFERS, f"seeds used splits of different origins ({', '.join(origins)})"))
    elif published is not None and origins and origins != ["published"]:
        out.append((DIFFERS, f"split {origins[0]} (not the published split)"))
    budgets = [b or "the recipe's epochs" for b in prov.budgets]
    if len(budgets) > 1:
        out.append((DIFFERS, f"seeds trained under different step budgets ({', '.join(budgets)})"))
    if published is None:
        return out
    if len(budgets) == 1 and prov.budgets[0]:
        out.append((DIFFERS, f"trained under a step budget ({budgets[0]}), not the published recipe's epochs"))
    if len(protocols) > 1:
        out.append((DIFFERS, f"seeds used different selection protocols ({', '.join(protocols)})"))
    elif published.protocol == UNKNOWN_PROTOCOL:
        out.append(("", "the published row does not say on which split it chose its hyper-parameters "
                        "(protocol unknown)"))
    elif protocols and protocols[0] != published.protocol:
        out.append((DIFFERS, f"protocol {protocols[0]}, the published row's is {published.protocol}"))
    return out
