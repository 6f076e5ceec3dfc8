"""kolm.cache: the caches keep the models used last, KOLM_CACHE_MODELS of them (1 by default),
dropping the least recently used; a bad value is one usage error."""

from __future__ import annotations

import os

import pytest


def entries(folder, names):
    made = []
    for age, name in enumerate(names):  # the first name the oldest
        path = folder / name
        path.mkdir() if name.endswith("/") else path.write_text(name)
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
        made.append(path)
    return made


def test_by_default_one_model_is_kept(tmp_path, monkeypatch):
    from kolm.cache import make_room

    monkeypatch.delenv("KOLM_CACHE_MODELS", raising=False)
    entries(tmp_path, ["a.gguf", "b/", "c.gguf"])
    make_room(tmp_path.glob("*"))
    assert list(tmp_path.iterdir()) == []  # room for the one about to be written


def test_the_least_recently_used_go_first(tmp_path, monkeypatch):
    from kolm.cache import make_room, used

    monkeypatch.setenv("KOLM_CACHE_MODELS", "3")
    a, b, c, d = entries(tmp_path, ["a.gguf", "b/", "c.gguf", "d/"])
    used(a)  # a, the oldest, was just reused: b and c are now the least recently used
    make_room(tmp_path.glob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf", "d"]


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_a_bad_setting_is_one_usage_error(tmp_path, monkeypatch, value):
    from kolm.cache import make_room
    from kolm.errors import UsageError

    monkeypatch.setenv("KOLM_CACHE_MODELS", value)
    entries(tmp_path, ["a.gguf"])
    with pytest.raises(UsageError, match="KOLM_CACHE_MODELS"):
        make_room(tmp_path.glob("*"))
    assert (tmp_path / "a.gguf").exists()
