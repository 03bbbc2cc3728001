"""Settings: defaults, the generated secret key, and that every setting is documented."""

from __future__ import annotations

from pathlib import Path

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
