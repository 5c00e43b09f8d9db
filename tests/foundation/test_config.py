"""Settings: read from the environment once, read-only after."""

from __future__ import annotations

import pytest

from shared import config


def test_settings_are_read_from_the_environment_and_read_only(configure):
    cfg = configure(DB_POOL_MAX="7", ALLOWED_ORIGINS=" https://a.example , https://b.example ")
    assert cfg.db_pool_max == 7
    assert cfg.allowed_origins == ("https://a.example", "https://b.example")
    with pytest.raises(AttributeError, match="read-only"):
        cfg.db_pool_max = 8
    with pytest.raises(AttributeError, match="read-only"):
        cfg.new_setting = 1
    assert config.settings() is cfg and cfg.db_pool_max == 7


def test_a_setting_that_is_not_a_number_is_refused_at_load(monkeypatch):
    monkeypatch.setenv("DB_POOL_MAX", "five")
    try:
        with pytest.raises(SystemExit, match="DB_POOL_MAX must be an integer"):
            config.reload()
    finally:
        monkeypatch.undo()
        config.reload()
