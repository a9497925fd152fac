"""Results reports: run folders read as CoOp's parse_test_res.py reads them, published numbers
(configs/published.yaml), tables beside those numbers, and accuracy-vs-shots plots."""
