"""An HTML page that colours each coreference cluster.

The text is cut at every mention boundary; each piece takes the colour of the innermost
mention covering it, and every mention is framed by ``[`` ... ``]`` with its cluster number,
so nested (and even crossing) mentions give well-formed HTML. All text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

PALETTE = ("#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad",
           "#d0f4de", "#e4c1f9", "#fcf6bd", "#a9def9")


def _colour(cluster: int) -> str:
    return PALETTE[cluster % len(PALETTE)]


def render_text(text: str, clusters: Sequence[Sequence[tuple[int, int]]]) -> str:
    """``text`` as HTML with the character spans ``[start, end)`` of each cluster marked."""
    mentions = [(s, e, c) for c, cluster in enumerate(clusters) for s, e in cluster if 0 <= s < e <= len(text)]
    cuts = sorted({0, len(text), *[s for s, _, _ in mentions], *[e for _, e, _ in mentions]})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        for s, e, c in sorted((m for m in mentions if m[1] == a), key=lambda m: m[0], reverse=True):
            out.append(f'<span class="bracket" style="background:{_colour(c)}">]<sub>{c + 1}</sub></span>')
        for s, e, c in sorted((m for m in mentions if m[0] == a), key=lambda m: -m[1]):
            out.append(f'<span class="bracket" style="background:{_colour(c)}">[</span>')
        covering = [(e - s, c) for s, e, c in mentions if s <= a and b <= e]
        piece = html.escape(text[a:b]).replace("\n", "<br>\n")
        if covering:
            c = min(covering)[1]
            out.append(f'<span class="mention" title="cluster {c + 1}" style="background:{_colour(c)}">{piece}</span>')
        else:
            out.append(piece)
    for s, e, c in sorted((m for m in mentions if m[1] == len(text)), key=lambda m: m[0], reverse=True):
        out.append(f'<span class="bracket" style="background:{_colour(c)}">]<sub>{c + 1}</sub></span>')
    return "".join(out)


def render_page(texts: Sequence[str], clusters_per_text: Sequence[Sequence[Sequence[tuple[int, int]]]],
                title: str = "Coreference clusters") -> str:
    """A whole HTML page: one section per text."""
    sections = "\n".join(f"<section><h2>Text {i + 1}</h2>\n<p>{render_text(t, c)}</p></section>"
                         for i, (t, c) in enumerate(zip(texts, clusters_per_text)))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title>\n"
            "<style>body{font-family:serif;max-width:50em;margin:2em auto;line-height:1.8}"
            ".bracket{font-weight:bold;font-family:sans-serif;font-size:80%}</style></head>\n<body><h1>"
            + html.escape(title) + "</h1>\n" + sections + "\n</body></html>\n")


__all__ = ["render_page", "render_text"]
