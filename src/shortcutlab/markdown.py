"""Markdown helpers of the report: percentages, tables."""

from __future__ import annotations

from .metrics import wilson


def pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def ci(p: float, n: int | None, digits: int = 1) -> str:
    """A proportion in % with its 95% Wilson interval on n trials: "12.3 [10.4, 14.5]" (the value alone when n
    is unknown: never an interval on a made-up n)."""
    if not n:
        return f"{100 * p:.{digits}f}"
    lo, hi = wilson(p, n)
    return f"{100 * p:.{digits}f} [{100 * lo:.{digits}f}, {100 * hi:.{digits}f}]"


def half_width(ps, n: int) -> float:
    """The widest 95% Wilson half-width (in points) over proportions measured on n trials each."""
    return max((50 * (hi - lo) for lo, hi in (wilson(p, n) for p in ps)), default=0.0)


def pm(ms: dict | None, n: int | None = None) -> str:
    """A mean ± std record over seeds as percentages ("—" when absent)."""
    if not ms:
        return "—"
    tail = f" ({n} seed{'s' if n != 1 else ''})" if n else ""
    return f"{100 * ms['mean']:.2f} ± {100 * ms['std']:.2f}%{tail}"


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def methods_of(e: dict) -> list[str]:
    h = e["test_hard"]
    return [k for k in h if isinstance(h[k], dict) and "foreground_mass" in h[k]]
