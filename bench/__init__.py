"""Benchmarks: each module measures one thing and prints, as its last line, one
JSON object with every figure (docs/benchmarks.md keeps the results). Run
them as modules from the repository root, with the environment each names,
e.g. `.venv/bot/bin/python -m bench.conversations --quick`. What they share
with the end-to-end tests (starting the stack, load, ports, percentiles, the
stock bot) lives in harness/; a benchmark never imports tests/.
"""
