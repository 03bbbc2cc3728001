"""Settings: defaults, the generated secret key, and that every setting is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import ROOT, Settings


def test_database_defaults_to_sqlite_inside_data_dir(tmp_path: Path) -> None:
    settings = Settings(DATA_DIR=tmp_path)
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve()}/cvprep.sqlite3"


def test_database_url_from_environment_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@127.0.0.1/db")
    assert Settings(DATA_DIR=tmp_path).sqlalchemy_url == "postgresql+psycopg://u@127.0.0.1/db"


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = Settings(DATA_DIR=tmp_path / "data").secret_key
    second = Settings(DATA_DIR=tmp_path / "data").secret_key
    assert first == second and len(first) >= 32
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0


def test_secret_key_from_environment_is_used_as_is(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert Settings(DATA_DIR=tmp_path).secret_key == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, str), name
        assert f"`{alias}`" in readme, f"{alias} is not documented in README.md"


@pytest.mark.parametrize("url", ["127.0.0.1:6379", "http://redis:6379/0", "redis://", ""])
def test_a_redis_url_that_is_not_one_is_refused_at_start(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="REDIS_URL"):
        Settings(DATA_DIR=tmp_path, REDIS_URL=url)


def test_redis_urls_of_every_kind_are_accepted(tmp_path: Path) -> None:
    for url in ("redis://:pw@host:6379/3", "rediss://host/0", "unix:///run/redis.sock"):
        assert Settings(DATA_DIR=tmp_path, REDIS_URL=url).redis_url == url
