"""Text for the report's HTML and SVG: secrets redacted, then HTML-escaped.

The report quotes what runs and models wrote (task ids, lesson titles, section names, errors), so
every text goes through `escape` here rather than `html.escape`: no credential a run held reaches
the report, and no markup a run held is live in it.
"""

from __future__ import annotations

import html

from pipeline.analyse.redact import redact


def escape(text: str) -> str:
    """`text` with every secret replaced by its ``[REDACTED:<kind>]`` marker, HTML-escaped."""
    return html.escape(redact(text) or "")
