"""Benchmarks (not tests): each prints its numbers and ratios against a baseline from the same run."""
