"""Benchmarks: the pipeline against a bare-engine floor on the same data, in one run."""
