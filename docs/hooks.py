"""MkDocs hooks: let bracketed maths through autorefs without hiding real broken references.

`[Δy;Δu]ᵀ … [Δy;Δu]` in the mathematics page, and the doctest output `[8]` in a docstring,
read to Markdown as reference-style links. Only these exact (page, target) pairs are silenced;
every other unresolved reference still fails `mkdocs build --strict`.
"""

import logging

_MATHS = {
    ("parameterizations.md", "Δy;Δu"),
    ("parameterizations.md", "C2 D21 D22; 0 0 I"),
    ("api/r2dn.md", "8"),
}


class _BracketedMaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(
            f" {page}:" in message and message.endswith(f"target '{target}'")
            for page, target in _MATHS
        )


def on_startup(command, dirty):  # noqa: ARG001 (the MkDocs hook signature)
    logging.getLogger("mkdocs.plugins.mkdocs_autorefs._internal.plugin").addFilter(
        _BracketedMaths()
    )
