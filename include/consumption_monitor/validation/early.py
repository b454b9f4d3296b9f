"""The chunk checks of a transaction-scale stream, run while the stream is being extracted.

Why (measured, 1M trade-in rows, 2 cores): the extract took 19.7 s with one core half idle
(the rest of it was the feed server's), then the validate step took 21.7 s on one core, of
which reading, typing and checking the chunks were 18 s; the stages ran in series. A
chunk's suite needs that chunk alone, and its pages are in the archive as soon as they are
written, so its checks need not wait for the rest of the batch.

How: the extract step (``pipeline.steps.extract_step``) starts one worker per chunked
stream, a fresh interpreter (``python -m consumption_monitor.validation.early``; not a fork,
as the extract runs threads), and tells it each chunk as soon as its last page is archived
(the chunks :func:`feeds.engine.iter_chunks` reads, cut by the same ``ChunkCutter``). The
worker reads, types and spools the chunk where the load reads typed chunks
(``feeds.typed_cache``) and runs the stream's suite a group of chunks at a time
(``validation.parallel.SuiteGroups``, as the validation workers do), writing each chunk's
outcomes beside its frame. At the end of the stream the extract waits for it and marks the
spool complete with a *fingerprint* of what the checks depended on (the code and suites,
the stream's spec, the period, the library versions); the commit moves the spool to its
batch.

The validate step then takes these outcomes instead of checking the chunks again, if the
spool is complete and its fingerprint is the one it would check with now; otherwise it
checks the chunks itself, as before. The checks that need every chunk or the warehouse
(history checks, the stream's profile) stay in the validate step, fed from the spooled
frames. It is only a cache: a worker that fails, is killed or is late leaves a warning in
the extract's log and the validation to the validate step, never a failed extract.
``CM_EARLY_CHECKS=0`` turns it off. Memory: the worker holds one group of chunks at a
time. The worker starts when the stream's first page announces more records than one chunk
(its ``total_field``), else with its first whole chunk: a stream within one chunk (most
months of a district, every test batch) is checked by the validate step in its own process,
as an interpreter and GX's import (~3 s) cost more than one chunk's checks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from consumption_monitor.common import config
from consumption_monitor.feeds import typed_cache
from consumption_monitor.feeds.archive import Attempt, PageRecord
from consumption_monitor.feeds.engine import ChunkCutter, ChunkPages, ExtractObserver
from consumption_monitor.feeds.spec import FeedSpec, StreamSpec
from consumption_monitor.validation.runner import Checked, ChunkResult

log = logging.getLogger(__name__)
ENABLED_ENV = "CM_EARLY_CHECKS"
MARKER = "early.json"  # chunks and fingerprint, written once the worker has checked them all
JOB = "job.pkl"  # the feed spec, stream, period and pages folder the worker checks
WORKER_LOG = "worker.log"
END = b"end\n"  # the last line the extract sends
STALE_S = 24 * 3600  # incoming spools of extracts that died are removed after a day
PACKAGE = Path(__file__).resolve().parents[1]


class EarlyChecksFailed(RuntimeError):
    """The worker did not check every chunk: the validate step will."""


def enabled() -> bool:
    """``CM_EARLY_CHECKS`` (default on; ``0``, ``false``, ``no`` or ``off`` turn it off)."""
    value = os.environ.get(ENABLED_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The package's code, specs, suites' defaults and reference files, and the versions of
    the libraries that type and check (hashing ~200 small files: a few milliseconds)."""
    digest = hashlib.sha256()
    for file in sorted(PACKAGE.rglob("*")):
        if file.suffix in (".py", ".yaml", ".json") and file.is_file():
            digest.update(str(file.relative_to(PACKAGE)).encode() + b"\0")
            digest.update(file.read_bytes())
    for dist in ("great_expectations", "pandas", "pyarrow"):
        digest.update(f"{dist}=={version(dist)}\n".encode())
    return digest.hexdigest()


def fingerprint(stream: StreamSpec, period: str) -> str:
    """What a chunk's outcomes depend on besides its records: the code, the suites as they
    are on disk now (``CM_EXPECTATIONS_DIR``), the stream's spec, the period and the
    library versions."""
    digest = hashlib.sha256(f"{_code_digest()}\n{period}\n{stream!r}\n".encode())
    suites = config.expectations_dir()
    for file in sorted(suites.rglob("*")) if suites.is_dir() else ():
        if file.is_file():
            digest.update(str(file.relative_to(suites)).encode() + b"\0")
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _outcome_file(path: Path, index: int) -> Path:
    return path / f"{index:06d}.out.pkl"


def _job_file(path: Path, index: int) -> Path:
    return path / f"{index:06d}.job.json"


class _Worker:
    """The worker process of one stream, and the chunks sent to it."""

    def __init__(self, feed: FeedSpec, stream: StreamSpec, period: str, path: Path, pages: Path):
        self.spool = typed_cache.Spool(path)  # a fresh folder
        self.path = path
        # what the worker checks with: the code and suites as they are when it starts (a
        # deployment or a suite edited during a long extract must not pass its outcomes,
        # checked with what was there before, as current)
        self.fingerprint = fingerprint(stream, period)
        with open(path / JOB, "wb") as fh:
            job = {"feed": feed, "stream": stream.name, "period": period, "pages": str(pages)}
            pickle.dump(job, fh, protocol=pickle.HIGHEST_PROTOCOL)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKAGE.parent), env.get("PYTHONPATH", "")) if p
        )
        with open(path / WORKER_LOG, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "consumption_monitor.validation.early", str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        self.sent = 0
        self.waited = 0.0  # seconds the extract waited for the worker after its last page

    def send(self, chunk: ChunkPages) -> None:
        """Hand one chunk to the worker: its pages in a file, its number on the pipe (a few
        bytes, so a worker that lags behind never blocks the extract)."""
        first, pages = chunk
        _job_file(self.path, self.sent).write_text(
            json.dumps({"first": first, "pages": pages}, ensure_ascii=False), encoding="utf-8"
        )
        assert self.process.stdin is not None
        self.process.stdin.write(f"{self.sent}\n".encode())
        self.process.stdin.flush()
        self.sent += 1

    def finish(self, deadline: float) -> None:
        """Wait for the worker to check every chunk sent, and mark the spool complete with
        the fingerprint of what it started with."""
        assert self.process.stdin is not None
        # said, not only closed: processes forked meanwhile may hold the pipe open
        self.process.stdin.write(END)
        self.process.stdin.close()
        waited = time.monotonic()
        try:
            code = self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise EarlyChecksFailed(
                "the worker did not finish within the extract's deadline"
            ) from None
        if code != 0:
            raise EarlyChecksFailed(f"the worker exited with {code}: {self._last_error()}")
        missing = [i for i in range(self.sent) if not _outcome_file(self.path, i).exists()]
        if missing:
            raise EarlyChecksFailed(f"chunks {missing[:5]} were not checked")
        self.waited = time.monotonic() - waited
        marker = {"chunks": self.sent, "fingerprint": self.fingerprint}
        (self.path / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        self.spool.close(self.sent)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):  # the pipe broke with the worker
                self.process.stdin.close()

    def _last_error(self) -> str:
        try:
            lines = (self.path / WORKER_LOG).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no log"
        last = [line for line in lines.splitlines() if line.strip()]
        return last[-1][:300] if last else "no message"


class EarlyChecks(ExtractObserver):
    """The extract's side: one worker per chunked stream, told of each chunk as its pages
    are archived (``feeds.engine.extract``'s observer); the stream's first page, when it
    announces more than one chunk of records, or else its first whole chunk starts the
    worker (a fork and exec, safe beside the extract's threads)."""

    def __init__(self, feed: FeedSpec, period: str) -> None:
        self.feed = feed
        self.period = period
        self.on = enabled()
        incoming = typed_cache.batch_dir(feed.name, period, "_incoming")
        self.root = incoming / uuid.uuid4().hex[:12]
        self.deadline = time.monotonic() + feed.limits.deadline_s
        self._cutter: ChunkCutter | None = None  # the chunks of the stream being extracted
        self._pages: Path | None = None
        self._worker: _Worker | None = None
        if self.on:
            _remove_stale(incoming)

    def stream_started(self, stream: StreamSpec, attempt: Attempt) -> None:
        if self.on and stream.chunk_rows:
            self._cutter, self._pages = ChunkCutter(stream.chunk_rows), attempt.path

    def page_archived(self, stream: StreamSpec, record: PageRecord) -> None:
        if self._cutter is None:
            return
        try:
            if record.rows is None:
                raise EarlyChecksFailed(f"page {record.number} holds no record list")
            if chunk := self._cutter.add(asdict(record), record.rows):
                self._start(stream).send(chunk)  # started by now, or by the first whole chunk
        except Exception as exc:  # a cache: the validate step checks instead
            self._give_up(stream, exc)

    def stream_sized(self, stream: StreamSpec, total: Any) -> None:
        """A stream that announces more records than one chunk starts its worker now,
        while the first chunk is still being fetched: the worker's interpreter and GX's
        import (~3 s of CPU) then overlap the extract's first seconds, when the extract
        leaves a core partly idle, instead of its busiest ones."""
        if self._cutter is None or self._worker is not None or stream.chunk_rows is None:
            return
        try:
            if isinstance(total, int) and total > stream.chunk_rows:
                self._start(stream)
        except Exception as exc:
            self._give_up(stream, exc)

    def _start(self, stream: StreamSpec) -> _Worker:
        if self._worker is None:
            assert self._pages is not None
            path = self.root / stream.name
            self._worker = _Worker(self.feed, stream, self.period, path, self._pages)
        return self._worker

    def stream_finished(self, stream: StreamSpec) -> None:
        cutter, worker = self._cutter, self._worker
        self._cutter = self._worker = None
        if cutter is None or worker is None:
            return  # a stream within one chunk: the validate step checks it in its process
        try:
            if rest := cutter.rest():
                worker.send(rest)
            worker.finish(self.deadline)
            log.info(
                "%s %s %s: %d chunks checked during the extract (%.1f s after the last page)",
                self.feed.name, self.period, stream.name, worker.sent, worker.waited,
            )  # fmt: skip
        except Exception as exc:
            self._worker = worker
            self._give_up(stream, exc)

    def committed(self, batch_id: str) -> None:
        if not self.root.exists() or not any(self.root.iterdir()):  # no stream was checked
            shutil.rmtree(self.root, ignore_errors=True)
            _tidy(self.root.parent)
            return
        target = typed_cache.batch_dir(self.feed.name, self.period, batch_id)
        try:
            shutil.rmtree(target, ignore_errors=True)
            self.root.rename(target)
        except OSError as exc:
            log.warning("chunks checked during the extract not kept: %s", exc)
            shutil.rmtree(self.root, ignore_errors=True)
        _tidy(self.root.parent)
        _remove_stale(target.parent, keep=target.name)  # batches extracted, never loaded

    def failed(self) -> None:
        if self._worker is not None:
            self._worker.kill()
        self._cutter = self._worker = None
        shutil.rmtree(self.root, ignore_errors=True)
        _tidy(self.root.parent)

    def _give_up(self, stream: StreamSpec, exc: Exception) -> None:
        log.warning(
            "%s %s %s: chunk checks during the extract stopped, the validate step will check "
            "every chunk (%s)", self.feed.name, self.period, stream.name, exc,
        )  # fmt: skip
        if self._worker is not None:
            self._worker.kill()
        self._cutter = self._worker = None
        shutil.rmtree(self.root / stream.name, ignore_errors=True)


def _remove_stale(folder: Path, keep: str | None = None) -> None:
    """Spools in ``folder`` untouched for ``STALE_S``: of extracts that died (incoming),
    or of batches extracted but never loaded (the load removes its batch's spool)."""
    if not folder.exists():
        return
    cutoff = time.time() - STALE_S
    for spool in folder.iterdir():
        if spool.name in (keep, "_incoming"):
            continue
        try:
            if spool.stat().st_mtime < cutoff:
                shutil.rmtree(spool, ignore_errors=True)
        except OSError:
            continue


def _tidy(incoming: Path) -> None:
    with contextlib.suppress(OSError):
        incoming.rmdir()  # only when empty


def checked(stream: StreamSpec, period: str, path: Path) -> Iterator[Checked] | None:
    """The chunks checked during the extract, in order, as the validate step's own checks
    give them (frame, outcomes, critical failures by row); None when the spool at ``path``
    is not complete or was checked with another fingerprint."""
    try:
        marker = json.loads((path / MARKER).read_text(encoding="utf-8"))
        count = int(marker["chunks"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    where = (stream.name, period)
    if marker.get("fingerprint") != fingerprint(stream, period):
        log.info("%s %s: the chunks checked during the extract are out of date", *where)
        return None
    files = [(typed_cache.chunk_file(path, i), _outcome_file(path, i)) for i in range(count)]
    if not all(frame.exists() and out.exists() for frame, out in files):
        return None

    def chunks() -> Iterator[Checked]:
        for frame_file, out_file in files:
            with open(out_file, "rb") as fh:
                outcomes, rows = pickle.load(fh)  # our own spool, written by the worker
            yield typed_cache.read_chunk(frame_file), outcomes, rows

    log.info("%s %s: outcomes of %d chunks taken from the extract", *where, count)
    return chunks()


def _work(path: Path) -> int:
    """The worker: type and spool each chunk whose number arrives on stdin, check them a
    group at a time (``parallel.SuiteGroups``), until the extract says ``end``."""
    from consumption_monitor.validation import parallel

    with open(path / JOB, "rb") as fh:
        job: dict[str, Any] = pickle.load(fh)  # written by the extract that started us
    feed: FeedSpec = job["feed"]
    stream = feed.stream(job["stream"])
    import great_expectations  # noqa: F401  while the first chunk is still being fetched

    groups = parallel.SuiteGroups(stream, job["period"], parallel._RUNNERS)
    waiting: list[int] = []  # chunks typed, their group not checked yet

    def write(results: list[ChunkResult]) -> None:
        for result in results:
            index = waiting.pop(0)
            partial = path / f"{index:06d}.out.partial"
            with open(partial, "wb") as fh:
                pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
            partial.rename(_outcome_file(path, index))

    for line in sys.stdin.buffer:
        if line == END:
            write(groups.flush())
            return 0
        index = int(line)
        chunk = json.loads(_job_file(path, index).read_text(encoding="utf-8"))
        frame = parallel.typed_chunk(
            parallel.ChunkJob(
                feed, stream, job["period"], Path(job["pages"]), chunk["first"], chunk["pages"],
                typed_cache.chunk_file(path, index),
            )
        )  # fmt: skip
        waiting.append(index)
        write(groups.add(frame))
    return 1  # the extract stopped without saying so: what was checked is not complete


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(_work(Path(sys.argv[1])))
