"""Typed chunks kept between validation and load of a transaction-scale batch.

Why: typing a chunk (JSON parse, per-value conversion) costs about as much as the COPY
itself. Validation (or the extract's worker, ``validation/early.py``) has typed every chunk
already, so it spools them (pickle, beside the data directory, no personal data: the
records are pseudonymised) and the load reads them back instead of re-parsing the archive.
It is only a cache: a load that finds it missing or incomplete (another worker, a crash)
re-types from the archive, which stays the reference; the spool is removed once the batch
is loaded.
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from consumption_monitor.common import config

DONE = "complete"


def batch_dir(feed: str, period: str, batch_id: str) -> Path:
    """The spools of a batch (one folder per stream)."""
    return config.data_dir() / "typed_cache" / feed / period / batch_id


def cache_dir(feed: str, period: str, batch_id: str, stream: str) -> Path:
    return batch_dir(feed, period, batch_id) / stream


class Spool:
    """Write a stream's typed chunks in order; ``close`` marks the spool complete."""

    def __init__(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self.path = path
        self.count = 0

    def write(self, frame: pd.DataFrame) -> None:
        write_chunk(self.chunk_file(self.count), frame)
        self.count += 1

    def chunk_file(self, index: int) -> Path:
        """Where chunk ``index`` goes (chunks checked in other processes write their own)."""
        return chunk_file(self.path, index)

    def close(self, count: int | None = None) -> None:
        """Mark the spool complete with ``count`` chunks (default: those written here)."""
        self.count = self.count if count is None else count
        (self.path / DONE).write_text(str(self.count), encoding="utf-8")


def chunk_file(path: Path, index: int) -> Path:
    """Chunk ``index`` of the spool at ``path``."""
    return path / f"{index:06d}.pkl"


def write_chunk(file: Path, frame: pd.DataFrame) -> None:
    with open(file, "wb") as fh:
        pickle.dump(frame, fh, protocol=pickle.HIGHEST_PROTOCOL)


def read_chunk(file: Path) -> pd.DataFrame:
    with open(file, "rb") as fh:
        return pickle.load(fh)  # our own spool, written by validation


def read(path: Path) -> Iterator[pd.DataFrame] | None:
    """The spooled chunks in order, or None when there is no complete spool."""
    marker = path / DONE
    if not marker.exists():
        return None
    count = int(marker.read_text(encoding="utf-8"))
    files = [chunk_file(path, i) for i in range(count)]
    if not all(f.exists() for f in files):
        return None

    def chunks() -> Iterator[pd.DataFrame]:
        for file in files:
            yield read_chunk(file)

    return chunks()


def drop(feed: str, period: str, batch_id: str) -> None:
    shutil.rmtree(batch_dir(feed, period, batch_id), ignore_errors=True)
