"""Streaming XML helpers shared by the PubMed XML and EndNote XML readers (lxml ``iterparse``:
one record element at a time, cleared after use, so memory stays bounded; no DTD or network
access, no entity expansion)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from metasift.sources._base import ReadContext

_DECL_ENC = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']")


def declared_encoding(head: bytes) -> str:
    m = _DECL_ENC.match(head.lstrip(b"\xef\xbb\xbf"))
    return m.group(1).decode("ascii").lower() if m else "utf-8"


def iter_elements(
    ctx: ReadContext, tags: tuple[str, ...], unit: str
) -> Iterator[tuple[int, object]]:
    """Yield ``(n, element)`` for each complete record element. A syntax error (a truncated or
    damaged file) ends the file: strict raises :class:`ImportFormatError` at the error's line;
    lenient records the problem and keeps the complete records read before it."""
    n = 0
    with ctx.open_binary() as fh:
        it = etree.iterparse(
            fh,
            events=("end",),
            tag=tags,
            load_dtd=False,
            no_network=True,
            resolve_entities=False,
            huge_tree=True,
            remove_comments=True,
            remove_pis=True,
        )
        while True:
            try:
                _, el = next(it)
            except StopIteration:
                break
            except etree.XMLSyntaxError as e:
                line = e.lineno if e.lineno else None
                msg = str(e.msg if hasattr(e, "msg") and e.msg else e)
                raise ctx.fail(
                    line, n + 1, None, f"XML is not well-formed after {n} complete {unit}(s): {msg}"
                ) from None
            except (etree.LxmlError, ValueError, UnicodeDecodeError) as e:
                raise ctx.fail(None, n + 1, None, f"cannot parse XML: {e}") from None
            n += 1
            yield n, el
            el.clear(keep_tail=True)
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
    if n == 0:
        raise ctx.fail(None, None, None, f"no <{tags[0]}> elements in the file")


def text_of(el) -> str:
    """All text inside ``el`` (EndNote wraps values in ``<style>``; PubMed has inline markup)."""
    if el is None:
        return ""
    return "".join(el.itertext())


def flatten(el, prefix: str = "") -> dict[str, list[str]]:
    """Leaf texts of a record element keyed by their path below it (the ``raw`` fields)."""
    out: dict[str, list[str]] = {}

    def walk(node, path):
        kids = [k for k in node if isinstance(k.tag, str)]
        if not kids or node.tag == "style" or all(k.tag == "style" for k in kids):
            t = text_of(node).strip()
            if t:
                out.setdefault(path, []).append(t)
            return
        for k in kids:
            walk(k, f"{path}/{k.tag}" if path else k.tag)

    for k in el:
        if isinstance(k.tag, str):
            walk(k, f"{prefix}{k.tag}")
    return out
