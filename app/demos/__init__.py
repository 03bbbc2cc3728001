"""The web side of the demos: each demo's form (`shape_forms`, `pooling_form`,
`augment_form`), reading typed form values (`forms`), uploads, error messages on screen, the
worker thread pool, papers' figures."""
