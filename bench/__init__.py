"""Benchmarks (not tests): each prints numbers and ratios against a baseline from the same run."""
