"""Practising: answering, rounds, grading, FSRS scheduling, what to practise next, parametric
generators, progress figures, and export / import of a learner's data. Routes are in app/views/."""
