"""Runs: the run manager and what it is made of (lifecycle, controls, access, limits,
sweeps, the recorder); plain Python with threads, no HTTP."""
