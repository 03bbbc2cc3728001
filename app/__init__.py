"""cvprep: image-classification interview prep where every answer can be run."""

__version__ = "0.1.0"
