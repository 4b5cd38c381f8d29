"""The published-model pointer that `fraudpipe up` reads to decide whether to train first."""
from __future__ import annotations

from pathlib import Path

import pytest

from fraudpipe.errors import ModelError
from fraudpipe.model_pointer import LATEST_FILE, published_version


def test_no_pointer_means_no_model(tmp_path: Path) -> None:
    assert published_version(tmp_path / "models") is None
    (tmp_path / LATEST_FILE).write_text("\n")
    assert published_version(tmp_path) is None  # an empty pointer names nothing


def test_pointer_names_the_published_version(tmp_path: Path) -> None:
    (tmp_path / LATEST_FILE).write_text("20261130T000000000Z\n")
    assert published_version(tmp_path) == "20261130T000000000Z"


def test_unreadable_pointer_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / LATEST_FILE).mkdir()  # a directory where the file should be
    with pytest.raises(ModelError, match=LATEST_FILE):
        published_version(tmp_path)
