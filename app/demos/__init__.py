"""The web side of the demos: each demo's forms (`shape_forms`), reading typed form values
(`forms`), uploads, error messages on screen, the worker thread pool, papers' figures."""
