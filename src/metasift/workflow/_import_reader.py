"""The rows an import writes, and a second process that reads a big file while this one writes.

Importing a large export spends about as long reading and normalising it (pure Python, so one
core) as the store spends storing it. For a big file (``PARALLEL_MIN_BYTES``), a reader process
(``_child`` below, run by ``python -P -c``) parses the file and sends the rows through a pipe
while the importing process writes them inside its one transaction; the child never touches the
store, so the transaction, its lock and its all-or-nothing rule stay in the importing process.
The pipe is bounded, so memory is bounded too: the reader waits while the writer is behind.

Protocol: the parent writes one pickle (the job) to the child's stdin; the child writes frames
to its stdout, ``("rows", [body, ...])`` per chunk, then ``("end", problems, warnings)`` or
``("import_error", fields)`` / ``("error", pickled exception or None, message, traceback)``.
A frame is a codec byte, an 8-byte length and the payload: rows in ``marshal`` (the same
interpreter on both ends; about half the cost of pickle for tuples of strings, and the rows are
most of the bytes), the other frames in ``pickle``.
Anything the child prints goes to its stderr, never into the frames.

If the child cannot be started, or dies or fails before sending any rows (it cannot import
metasift, or a reader is registered only in this process) with anything but an
``ImportFormatError``, the file is read in-process instead, so the result never depends on the
child. Whatever the child writes to stderr (warnings) is passed on to this process's stderr.
"""

from __future__ import annotations

import json
import marshal
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from orjson import dumps as _orjson_dumps

from metasift.errors import ImportFormatError, MetasiftError

CHUNK = 2000  # records per write (and per frame)
PARALLEL_MIN_BYTES = 32 * 1024 * 1024  # files at least this big are read in a second process

# One record's own columns, in this order (the store adds source, position and reference).
BODY_COLUMNS = (
    "line", "title", "abstract", "authors", "year", "journal", "volume", "issue", "pages", "doi",
    "pmid", "keywords", "language", "publication_type", "source_database", "accession_number",
    "issn", "url", "label", "raw",
)  # fmt: skip


def _dumps(value) -> str:
    """JSON text of a record's list or dict of strings. orjson refuses what is not valid UTF-8
    (a lone surrogate from a broken file); ``json.dumps`` escapes it, as the ORM would."""
    try:
        return _orjson_dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def record_batches(stream, database: str, chunk: int = CHUNK) -> Iterator[list[tuple]]:
    """Lists of record bodies (``BODY_COLUMNS``) from a :class:`~metasift.sources.ReadStream`.

    JSON columns are serialised here with orjson (the raw fields are about as many bytes as the
    file; ``json.dumps`` took a quarter of the reader's time on them, orjson a twentieth): the same
    JSON values as SQLAlchemy's JSON type writes (``json.dumps``), in compact UTF-8 rather than
    ASCII escapes, so the ORM reads back what it would have written. A record without a source
    database gets the import's ``database``."""
    dumps = _dumps
    batch: list[tuple] = []
    for rec in stream:
        batch.append(
            (
                rec.line,
                rec.title or "",
                rec.abstract or "",
                dumps([[a.family, a.given] for a in rec.authors]),
                rec.year,
                rec.journal or "",
                rec.volume or "",
                rec.issue or "",
                rec.pages or "",
                rec.doi or "",
                rec.pmid or "",
                dumps(list(rec.keywords)),
                rec.language or "",
                rec.publication_type or "",
                rec.source_database or database,
                rec.accession_number or "",
                rec.issn or "",
                rec.url or "",
                rec.label,
                dumps(rec.raw),
            )
        )
        if len(batch) >= chunk:
            yield batch
            batch = []
    if batch:
        yield batch


class ReaderProcess:
    """A child process that reads one file and yields its record bodies in chunks.

    ``spawn()`` starts the interpreter early (its start-up overlaps the parent's sniffing),
    ``send()`` gives it the job, iterating yields the chunks, ``problems``/``warnings`` are set
    at the end, ``close()`` always ends the child."""

    def __init__(self, proc: subprocess.Popen, errfile):
        self.proc = proc
        self.errfile = errfile
        self.problems: list[dict] = []
        self.warnings: list[str] = []
        self._job: tuple | None = None
        self._finished = False  # True once the child sent its last frame

    @classmethod
    def spawn(cls) -> ReaderProcess | None:
        if not sys.executable:
            return None
        # The child imports the metasift this process runs (-P: not one in the working folder).
        root = str(Path(__file__).resolve().parents[2])
        code = (
            f"import sys; root = {root!r}; root in sys.path or sys.path.insert(0, root); "
            f"from {__name__} import _child; sys.exit(_child())"
        )
        errfile = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-P", "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errfile,
            )
        except OSError:
            errfile.close()
            return None
        return cls(proc, errfile)

    def send(self, path: Path, sniffed, lenient: bool, database: str, chunk: int = CHUNK):
        self._job = (str(path), sniffed, bool(lenient), database, chunk)
        try:
            pickle.dump(
                (str(path), asdict(sniffed), bool(lenient), database, chunk), self.proc.stdin
            )
            self.proc.stdin.close()
        except OSError:
            pass  # the child is gone: __iter__ reads in-process instead

    def __iter__(self) -> Iterator[list[tuple]]:
        assert self._job is not None, "send() the job first"
        received = False
        first = None
        while True:
            frame = self._frame()
            if frame is None:
                if not received:  # the child never worked: read the file here instead
                    yield from self._in_process()
                    return
                raise MetasiftError(
                    f"{self._job[0]}: the reader process stopped unexpectedly "
                    f"(exit code {self.proc.wait()}): {self._stderr_tail()}"
                )
            if not received:
                received, first = True, frame
            kind = frame[0]
            if kind == "rows":
                yield frame[1]
            elif kind == "end":
                self.problems, self.warnings = frame[1], frame[2]
                self._finished = True
                return
            elif kind == "import_error":
                self._finished = True
                raise ImportFormatError(**frame[1])
            elif kind == "error" and frame is first:  # failed before any rows: read it here
                yield from self._in_process()
                return
            else:  # ("error", pickled exception or None, message, traceback)
                exc = None
                if frame[1] is not None:
                    try:
                        exc = pickle.loads(frame[1])
                    except Exception:
                        exc = None
                if isinstance(exc, BaseException):
                    raise exc
                raise MetasiftError(f"{self._job[0]}: the reader failed: {frame[2]}\n{frame[3]}")

    def _frame(self):
        """The next frame from the child, or None if it is gone."""
        try:
            head = self.proc.stdout.read(9)
            if len(head) < 9:
                return None
            size = int.from_bytes(head[1:], "little")
            payload = self.proc.stdout.read(size)
            if len(payload) < size:
                return None
            return (marshal if head[:1] == b"m" else pickle).loads(payload)
        except (EOFError, ValueError, TypeError, pickle.UnpicklingError, OSError):
            return None

    def _in_process(self) -> Iterator[list[tuple]]:
        from metasift import sources

        path, sniffed, lenient, database, chunk = self._job
        stream = sources.iter_records(path, lenient=lenient, sniffed=sniffed)
        self.warnings = stream.warnings
        yield from record_batches(stream, database, chunk)
        self.problems, self.warnings = list(stream.problems), list(stream.warnings)

    def _stderr_tail(self) -> str:
        try:
            self.errfile.seek(0)
            return self.errfile.read().decode("utf-8", "replace").strip()[-2000:] or "no message"
        except OSError:
            return "no message"

    def close(self) -> None:
        try:  # a child that sent everything is exiting: give it a moment before killing it
            self.proc.wait(timeout=5 if self._finished else 0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.proc.wait() == 0:
            try:
                self.errfile.seek(0)
                if text := self.errfile.read().decode("utf-8", "replace"):
                    sys.stderr.write(text)
            except (OSError, ValueError):
                pass
        for fh in (self.proc.stdin, self.proc.stdout, self.errfile):
            try:
                fh.close()
            except OSError:
                pass


def _child() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray output (print, C libraries) goes to stderr, not into the frames

    def send(frame) -> None:
        if frame[0] == "rows":
            codec, payload = b"m", marshal.dumps(frame)
        else:
            codec, payload = b"p", pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(codec + len(payload).to_bytes(8, "little"))
        out.write(payload)
        out.flush()

    path, sniffed, lenient, database, chunk = pickle.load(sys.stdin.buffer)
    try:
        from metasift import sources
        from metasift.sources import Sniffed

        stream = sources.iter_records(path, lenient=lenient, sniffed=Sniffed(**sniffed))
        for batch in record_batches(stream, database, chunk):
            send(("rows", batch))
        send(("end", list(stream.problems), list(stream.warnings)))
    except BrokenPipeError:
        return 1  # the importing process is gone
    except ImportFormatError as e:
        fields = ("path", "line", "record", "field", "reason", "sniffed")
        send(("import_error", {k: getattr(e, k) for k in fields}))
    except BaseException as e:  # noqa: BLE001 - handed to the importing process, which raises it
        import traceback

        try:
            payload = pickle.dumps(e)
            pickle.loads(payload)
        except Exception:
            payload = None
        send(("error", payload, f"{type(e).__name__}: {e}", traceback.format_exc()))
    out.close()
    return 0
