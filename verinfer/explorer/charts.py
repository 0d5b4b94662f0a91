"""Small inline SVG charts for the overview (no JavaScript). Only numbers and escaped labels go in."""

from __future__ import annotations

from html import escape


def bar_chart(values: list[float], labels: list[str], *, title: str, width: int = 320, height: int = 110,
              color: str = "#3b6ea8", unit: str = "") -> str:
    """Vertical bars with a title, the max value and first/last labels."""
    n = max(1, len(values))
    top = max(values) if values else 0
    bw = (width - 20) / n
    bars = []
    for i, v in enumerate(values):
        h = 0 if top <= 0 else (height - 40) * float(v) / top
        x = 10 + i * bw
        tip = escape(f"{labels[i] if i < len(labels) else ''}: {v:g}{unit}")
        bars.append(f'<rect x="{x:.1f}" y="{height - 20 - h:.1f}" width="{max(1.0, bw - 1):.1f}" height="{h:.1f}" '
                    f'fill="{color}"><title>{tip}</title></rect>')
    first = escape(labels[0]) if labels else ""
    last = escape(labels[-1]) if labels else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart" role="img" '
            f'aria-label="{escape(title)}"><text x="10" y="14" font-size="12">{escape(title)} '
            f'(max {top:g}{escape(unit)})</text>{"".join(bars)}'
            f'<text x="10" y="{height - 5}" font-size="10">{first}</text>'
            f'<text x="{width - 10}" y="{height - 5}" font-size="10" text-anchor="end">{last}</text></svg>')


def ratio_bar(part: int, total: int, *, title: str, width: int = 320) -> str:
    """One horizontal bar: part/total (e.g. proof rate)."""
    frac = part / total if total else 0.0
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40" class="chart" role="img" '
            f'aria-label="{escape(title)}"><text x="0" y="12" font-size="12">{escape(title)}: {part}/{total} '
            f'({frac * 100:.0f}%)</text><rect x="0" y="18" width="{width}" height="14" fill="#e3e7ee"/>'
            f'<rect x="0" y="18" width="{width * frac:.1f}" height="14" fill="#2e8b57"/></svg>')


def buckets(points: list[int], lo: int, hi: int, n: int = 24) -> tuple[list[float], list[str]]:
    """Count integer positions (block numbers) into n equal buckets over [lo, hi]."""
    if hi < lo:
        return [], []
    n = max(1, min(n, hi - lo + 1))
    size = (hi - lo + 1) / n
    counts = [0.0] * n
    for p in points:
        if lo <= p <= hi:
            counts[min(n - 1, int((p - lo) / size))] += 1
    labels = [f"block {int(lo + i * size)}" for i in range(n)]
    return counts, labels
