"""Experiments: named groups of runs that each test one claim of an answer (see presets)."""
