"""The parts a report section is made of: the report's CSS, an HTML table, an inline figure.

Part of the plugin contract: a plugin's ``fmio_report_sections`` (and a feature's sections) draw with
these, and the HTML report uses the same ones. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.ok{color:#070}.bad{color:#b00}.muted{color:#777}
img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
.scroll{max-height:420px;overflow:auto}
"""


def figure_html(fig: Any, alt: str = "plot") -> str:
    """A matplotlib figure as an inline ``<img>`` (the figure is closed); for plugins' report sections too."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (imported when a report draws, not before)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table_html(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """An HTML table (floats to 6 significant digits); the first ``left`` columns left-aligned."""
    def cell(v: Any, i: int) -> str:
        cls = ' class="l"' if i < left else ""
        if isinstance(v, float):
            v = f"{v:.6g}"
        return f"<td{cls}>{html.escape(str(v))}</td>"

    head = "".join(f'<th{" class=l" if i < left else ""}>{html.escape(h)}</th>' for i,
                   h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell(v, i) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
