"""Generic pieces every other package builds on (registries, atomic writes, stable seeds, file
digests); they import nothing of ours, so any layer may use them."""
