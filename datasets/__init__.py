"""Datasets: the Dassl data model, CoOp's datasets (one module each), the retrieval pairs and the
simulated benchmarks; each module is imported when its name is looked up (``registry``)."""
