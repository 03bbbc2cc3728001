"""The compute side: pure PyTorch/torchvision. Never imports FastAPI, SQLModel or Jinja."""
