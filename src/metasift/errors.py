"""Typed errors. Every error a user can cause is a ``MetasiftError``; the CLI turns one into a
one-line message and exit code 1 (``--debug`` re-raises)."""

from __future__ import annotations


class MetasiftError(Exception):
    """Base class of every error a user can cause (bad input, bad protocol, bad parameter)."""


class ParameterError(MetasiftError, ValueError):
    """A function was called with a parameter outside its allowed values.

    The message follows one form (scikit-learn's): "The 'method' parameter of rma must be one
    of {...}. Got 'reml2' instead."
    """

    def __init__(self, param: str, func: str, allowed, got):
        self.param, self.func, self.allowed, self.got = param, func, allowed, got
        allowed_s = "{" + ", ".join(repr(a) for a in allowed) + "}" if allowed is not None else ""
        super().__init__(
            f"The {param!r} parameter of {func} must be one of {allowed_s}. Got {got!r} instead."
            if allowed is not None
            else f"The {param!r} parameter of {func} is invalid. Got {got!r} instead."
        )


def check_param(value, allowed, param: str, func: str):
    """Raise :class:`ParameterError` unless ``value`` is one of ``allowed``; return it."""
    if value not in allowed:
        raise ParameterError(param, func, list(allowed), value)
    return value


class ProjectError(MetasiftError):
    """A project folder is missing, not a metasift project, or already exists."""


class ProtocolError(MetasiftError):
    """protocol.yaml is invalid. ``problems`` is a list of (key path, expected, found)."""

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems)
        lines = [f"{p}: expected {e}, found {f}" for p, e, f in self.problems]
        super().__init__(f"{self.path}: invalid protocol\n  " + "\n  ".join(lines))


class StoreError(MetasiftError):
    """The review store cannot be opened, or a write broke an invariant."""


class StoreBusy(StoreError):
    """The store's write lock was not granted within the time the caller would wait; nothing was
    written (try again, waiting longer)."""


class BlindingError(MetasiftError):
    """A reviewer asked for another reviewer's decision before both have decided."""


class ImportFormatError(MetasiftError):
    """A file could not be read. Says where: file, line, record, field and why."""

    def __init__(self, path, line=None, record=None, field=None, reason="", sniffed=None):
        self.path = str(path)
        self.line = line
        self.record = record
        self.field = field
        self.reason = reason
        self.sniffed = sniffed or {}
        where = [self.path]
        if line is not None:
            where.append(f"line {line}")
        if record is not None:
            where.append(f"record {record}")
        if field:
            where.append(f"field {field}")
        msg = ", ".join(where) + f": {reason}"
        if self.sniffed:
            msg += " (sniffed: " + ", ".join(f"{k}={v}" for k, v in self.sniffed.items()) + ")"
        super().__init__(msg)

    def as_problem(self) -> dict:
        return {
            "line": self.line,
            "record": self.record,
            "field": self.field,
            "reason": self.reason,
        }


class SheetError(MetasiftError):
    """A spreadsheet (extraction or risk-of-bias form) has located errors: (sheet, row, column, expected)."""

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems)
        lines = [
            f"sheet {s!r}, row {r}, column {c!r}: {why}" for s, r, c, why in self.problems[:20]
        ]
        more = f"\n  … and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(
            f"{self.path}: {len(self.problems)} problem(s)\n  " + "\n  ".join(lines) + more
        )
