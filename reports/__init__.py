"""Results reports: run folders read as CoOp's parse_test_res.py reads them (and the one rule for a
finished run, ``runs.run_status``, asked from a shell with ``python -m reports.finished``), published numbers
(configs/published.yaml), tables beside those numbers, and accuracy-vs-shots plots."""
