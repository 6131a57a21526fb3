"""What every reader shares: the sniffed facts about a file, the reading context (strict or
lenient, problems, warnings), the encoding detection and the ``Reader`` base class."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from metasift.errors import ImportFormatError
from metasift.records import RecordData

HEAD_BYTES = 64 * 1024
_NEWLINE_NAMES = {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}
_CHUNK = 1 << 20

BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Sniffed:
    """What was found out about a file before reading it."""

    format: str
    encoding: str | None
    bom: bool = False
    delimiter: str | None = None
    newline: str | None = None
    assumed_encoding_warning: str | None = None

    def to_dict(self) -> dict:
        """The sniffed facts for an error message (newline shown as LF/CRLF/CR)."""
        d = asdict(self)
        d.pop("assumed_encoding_warning")
        d = {k: v for k, v in d.items() if v is not None}
        if "newline" in d:
            d["newline"] = _NEWLINE_NAMES.get(d["newline"], repr(d["newline"]))
        if d.get("delimiter") == "\t":
            d["delimiter"] = "TAB"
        return d

    def summary(self) -> str:
        bits = [f"format={self.format}", f"encoding={self.encoding}", f"bom={self.bom}"]
        if self.delimiter is not None:
            bits.append(f"delimiter={self.delimiter!r}")
        if self.newline is not None:
            bits.append(f"newline={self.newline!r}")
        return ", ".join(bits)


def head_text(head: bytes) -> str:
    """The first bytes of a file as text, for sniffing (BOM dropped, undecodable bytes replaced)."""
    for bom, enc in BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(enc if enc != "utf-16" else "utf-16", errors="replace")
    return head.decode("utf-8", errors="replace")


def detect_encoding(path: Path, head: bytes) -> tuple[str, bool, str | None]:
    """(encoding, bom, warning). UTF-8 (with or without BOM) is checked over the whole file, in
    chunks, so that a Windows-1252 byte in the last record is not found only after half the file
    has been imported; otherwise Windows-1252 is assumed (Latin-1 if cp1252 cannot decode it) and
    the warning says so and where the first non-UTF-8 byte is."""
    for bom, enc in BOMS:
        if head.startswith(bom):
            if enc == "utf-16":
                return "utf-16", True, None
            skip = len(bom)
            break
    else:
        enc, skip = "utf-8", 0
    dec = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    line = 1
    with open(path, "rb") as fh:
        fh.seek(skip)
        while True:
            chunk = fh.read(_CHUNK)
            final = not chunk
            try:
                dec.decode(chunk, final=final)
            except UnicodeDecodeError as e:
                bad = offset + e.start
                with open(path, "rb") as f2:
                    data = f2.read(skip + bad + 1)
                line = data.count(b"\n") + 1
                byte = data[-1:]
                try:
                    _check_decodes(path, "cp1252")
                    assumed = "cp1252"
                    name = "Windows-1252 (cp1252)"
                except UnicodeDecodeError:
                    assumed = "latin-1"
                    name = "Latin-1 (ISO-8859-1)"
                warning = (
                    f"{path.name} is not valid UTF-8 (byte 0x{byte.hex()} at line {line}); "
                    f"read as {name}: check accented characters"
                )
                return assumed, skip > 0, warning
            if final:
                break
            offset += len(chunk)
    return enc, skip > 0, None


def _check_decodes(path: Path, enc: str) -> None:
    dec = codecs.getincrementaldecoder(enc)()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            dec.decode(chunk)
        dec.decode(b"", final=True)


@dataclass
class ReadContext:
    """One reading of one file: where problems go (raised in strict mode, collected in lenient)."""

    path: Path
    sniffed: Sniffed
    lenient: bool = False
    problems: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def problem(self, line, record, fld, reason) -> None:
        """Report a problem: raise :class:`ImportFormatError` (strict) or collect it (lenient)."""
        if not self.lenient:
            raise ImportFormatError(
                self.path, line, record, fld, reason, sniffed=self.sniffed.to_dict()
            )
        self.problems.append({"line": line, "record": record, "field": fld, "reason": reason})

    def fail(self, line, record, fld, reason) -> ImportFormatError:
        """An error that ends the file in both modes (the rest cannot be read)."""
        if self.lenient:
            self.problems.append({"line": line, "record": record, "field": fld, "reason": reason})
        return ImportFormatError(
            self.path, line, record, fld, reason, sniffed=self.sniffed.to_dict()
        )

    def open_text(self) -> io.TextIOWrapper:
        enc = self.sniffed.encoding or "utf-8"
        if enc == "utf-8" and self.sniffed.bom:
            enc = "utf-8-sig"
        # newline=None: universal newlines, so CRLF and CR files read like LF files.
        return open(self.path, encoding=enc, newline=None, errors="replace")

    def open_binary(self):
        return open(self.path, "rb")

    def check_record(
        self, rec: RecordData, n: int, title_field: str, year_field: str, lines: dict | None = None
    ) -> None:
        """The problems every reader flags the same way: no title; a date with no year in it.
        ``lines`` maps a field to the line it is on (else the record's first line is given)."""
        lines = lines or {}
        if not rec.title:
            self.problem(rec.line, n, title_field, "record has no title")
        if rec.year is None:
            vals = rec.raw.get(year_field)
            if vals and vals[0].strip():
                self.problem(
                    lines.get(year_field, rec.line),
                    n,
                    year_field,
                    f"no year in {vals[0].strip()!r} (year left empty)",
                )


class Reader:
    """Base class of the readers registered under ``metasift.readers``.

    ``sniff(head, filename)`` says how sure the reader is (0..1) that ``head`` (the first 64 KB)
    is its format; ``read(ctx)`` yields :class:`RecordData` one by one (streaming) and reports
    problems through ``ctx.problem``."""

    format: str = ""
    extensions: tuple[str, ...] = ()
    binary: bool = False

    @classmethod
    def sniff(cls, head: bytes, filename: str | None = None) -> float:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def ext_bonus(cls, filename: str | None) -> float:
        if filename and Path(str(filename)).suffix.lower() in cls.extensions:
            return 0.05
        return 0.0

    def read(self, ctx: ReadContext) -> Iterator[RecordData]:  # pragma: no cover
        raise NotImplementedError
