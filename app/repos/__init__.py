"""Data access, one module per entity family. Route functions never write SQL themselves."""
