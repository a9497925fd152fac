"""Method code as plain torch: formulas and modules that import no trainer framework.

Our trainers (and, in plugin mode, Dassl trainers) are thin layers that feed these data,
so each formula exists once.
"""
