"""Practising: parametric items, grading, scheduling, what to practise next."""
