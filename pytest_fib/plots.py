"""The report's speedup plots, drawn with matplotlib (the ``report`` extra: ``pip install
'pytest-fib[report]'``), imported only here, when ``--fib-report`` writes its summary (issue 18: the
hand-written SVG clipped its labels, its legend covered bars and it had no y scale).

Each plot is a PNG file beside ``summary.md`` and is also embedded in it as a base64 data URI, so
the summary shows it where a relative link does not resolve (``cat summary.md >>
"$GITHUB_STEP_SUMMARY"``).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def speedup_png(title: str, rows: Sequence[Mapping[str, Any]], label: Any) -> bytes:
    """Grouped bars: speedup (reference / solution) per workload, one colour per solution; a
    labelled y axis, a 1x line, the legend outside the bars, nothing cut off."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display; never a GUI backend in a test session
    import matplotlib.pyplot as plt

    workloads = sorted({label(r) for r in rows}, key=lambda w: (len(w), w))
    solutions = sorted({r["solution"] for r in rows})
    value = {(label(r), r["solution"]): r["speedup"] for r in rows}
    width = 0.8 / max(1, len(solutions))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(workloads) * max(1, len(solutions)) + 3),
                                    4.2), dpi=100)
    try:
        for j, sol in enumerate(solutions):
            xs = [i + (j - (len(solutions) - 1) / 2) * width for i in range(len(workloads))]
            ys = [value.get((w, sol), 0.0) for w in workloads]
            ax.bar(xs, ys, width=width * 0.95, label=sol)
        ax.axhline(1.0, color="0.4", linestyle="--", linewidth=1, label="reference (1x)")
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels(workloads, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("speedup (reference time / solution time)")
        ax.set_xlabel("workload")
        positive = [v for v in value.values() if v > 0]
        if positive and max([*positive, 1.0]) / min([*positive, 1.0]) > 20:
            ax.set_yscale("log")  # 0.01x next to 30x: linear bars would hide one end
            ax.set_ylim(min([*positive, 1.0]) / 1.5, max([*positive, 1.0]) * 1.5)
        else:
            ax.set_ylim(0, max([1.0, *value.values()]) * 1.15)
        ax.set_title(f"{title}: speedup over the reference")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()
    finally:
        plt.close(fig)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
