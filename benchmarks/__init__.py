"""Benchmarks, run by hand or with `make bench`.

Each prints ratios against a baseline measured in the same run: these machines are shared and noisy.
"""
