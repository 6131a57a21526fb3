"""Small shared helpers for the synthesis stage (no store, no I/O)."""

from __future__ import annotations

import functools
import hashlib

import numpy as np
from scipy import special

from metasift.errors import MetasiftError, ParameterError


class SynthesisError(MetasiftError, ValueError):
    """Input data cannot be analysed (too few studies, non-positive variances, length mismatch)."""


@functools.lru_cache(maxsize=1)
def version() -> str:
    try:
        from metasift import __version__

        return __version__
    except Exception:  # pragma: no cover - metasift always importable here
        return "unknown"


def checksum(*arrays) -> str:
    """sha256 (first 16 hex digits) over the bytes of the input arrays, in order."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"<none>")
            continue
        if type(a) is np.ndarray and a.dtype == np.float64 and a.flags.c_contiguous:
            h.update(a.data)
            continue
        arr = np.asarray(a)
        if arr.dtype.kind in "OUS":
            h.update("\x1f".join(map(str, arr.ravel().tolist())).encode())
        else:
            h.update(np.ascontiguousarray(arr, dtype=float).tobytes())
    return h.hexdigest()[:16]


def alpha_from_level(level, func: str) -> float:
    """metafor's convention: level=95 means a 95% interval; 0.95 is also accepted."""
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise ParameterError("level", func, None, level) from None
    if lv > 1:
        lv = lv / 100.0
    if not 0 < lv < 1:
        raise ParameterError("level", func, None, level)
    return 1.0 - lv


def as_float_array(x, name: str, func: str, n: int | None = None) -> np.ndarray:
    if x is None:
        raise SynthesisError(f"{func}: {name!r} is required")
    if type(x) is np.ndarray and x.dtype == np.float64 and x.ndim == 1:
        if n is not None and x.size != n:
            raise SynthesisError(f"{func}: {name!r} has length {x.size}, expected {n}")
        return x
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise SynthesisError(f"{func}: {name!r} must be numeric") from None
    arr = np.atleast_1d(arr).ravel()
    if n is not None and arr.size != n:
        raise SynthesisError(f"{func}: {name!r} has length {arr.size}, expected {n}")
    return arr


# Fast distribution functions (scipy.special ufuncs; scipy.stats adds ~50 us per call).
def qnorm_upper(alpha: float) -> float:
    return float(-special.ndtri(alpha / 2.0))


def qt_upper(alpha: float, df: float) -> float:
    return float(special.stdtrit(df, 1.0 - alpha / 2.0))


def p_norm2(z):
    return 2.0 * special.ndtr(-np.abs(z))


def p_t2(t, df):
    return 2.0 * special.stdtr(df, -np.abs(t))


def p_chi2(q, df):
    return special.chdtrc(df, q)


def p_f(f, df1, df2):
    return special.fdtrc(df1, df2, f)


def fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "NA"
    return f"{x:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or np.isnan(p):
        return "NA"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"
