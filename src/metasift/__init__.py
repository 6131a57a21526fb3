"""metasift: a whole systematic review and meta-analysis in one reproducible project."""

from __future__ import annotations

__version__ = "0.1.0"

from metasift.errors import ImportFormatError, MetasiftError, ProtocolError  # noqa: E402

__all__ = ["__version__", "MetasiftError", "ImportFormatError", "ProtocolError"]
