"""Shared checks for the figure tests."""

import pathlib

import pytest
from matplotlib.figure import Figure


def check_saved(paths):
    """Every path exists and is a valid PDF (``%PDF-`` header, ``%%EOF`` trailer) or PNG
    (signature and IHDR chunk)."""
    paths = [pathlib.Path(p) for p in paths]
    assert paths, "nothing was saved"
    for p in paths:
        data = p.read_bytes()
        if p.suffix == ".pdf":
            assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:], p
        elif p.suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR", p
        else:
            raise AssertionError(f"unexpected file {p}")


def check_labelled(fig):
    """A Figure whose every visible axes has an x and a y label."""
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert axes
    for ax in axes:
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), f"unlabelled axes {ax}"


@pytest.fixture
def saved_ok():
    return check_saved


@pytest.fixture
def labelled_ok():
    return check_labelled
