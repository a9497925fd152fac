"""Named experiments (``configs/experiments/<name>.yaml``) and the one command that reproduces
them: ``bash scripts/reproduce.sh NAME`` (prerequisite check, feature extraction, the runs on
this machine or a SLURM cluster, then the table, plots and a provenance file)."""
