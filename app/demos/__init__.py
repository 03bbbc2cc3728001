"""Web-side helpers for the demos: the worker thread pool, form and upload parsing, papers' figures."""
