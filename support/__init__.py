"""Support for tests, benchmarks and scripts: live servers, Chromium, strict JSON (not shipped)."""
