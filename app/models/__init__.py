"""Database tables (SQLModel), one module per entity family. Importing this registers them all."""

from app.models.datasets import Dataset
from app.models.experiments import Experiment
from app.models.practice import CardState, Draft, ReviewLog
from app.models.runs import Run
from app.models.sessions import BrowserSession
from app.models.users import LoginAttempt, User

__all__ = [
    "BrowserSession",
    "CardState",
    "Dataset",
    "Draft",
    "Experiment",
    "LoginAttempt",
    "ReviewLog",
    "Run",
    "User",
]
