"""Benchmark tables, paper-style figures and the HTML report, built from the pipeline's output files."""
