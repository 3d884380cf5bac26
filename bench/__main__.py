"""Run every benchmark: python -m bench  (engine, run page; see docs/benchmarks.md)."""

from bench import engine, page

engine.main([])
page.main([])
