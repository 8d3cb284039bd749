"""KPI reducers over output trajectories and the ``"reducer(output, args...)"`` expressions that name them."""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fmi_optimizer.errors import StudyError
from fmi_optimizer.registry import KpiFunction, KpiRegistry


def final(t: np.ndarray, y: np.ndarray) -> float:
    return float(y[-1])


def mean(t: np.ndarray, y: np.ndarray) -> float:
    """Time-weighted mean (trapezoid), so uneven sampling does not bias it."""
    span = float(t[-1] - t[0])
    return float(np.trapezoid(y, t) / span) if span > 0 else float(y[-1])


def maximum(t: np.ndarray, y: np.ndarray) -> float:
    return float(np.max(y))


def minimum(t: np.ndarray, y: np.ndarray) -> float:
    return float(np.min(y))


def integral(t: np.ndarray, y: np.ndarray) -> float:
    return float(np.trapezoid(y, t))


def rms(t: np.ndarray, y: np.ndarray) -> float:
    span = float(t[-1] - t[0])
    return float(np.sqrt(np.trapezoid(y * y, t) / span)) if span > 0 else float(abs(y[-1]))


def time_above(t: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Total time the signal spends above ``limit`` (linear interpolation inside each interval)."""
    total = 0.0
    for i in range(len(t) - 1):
        a, b, dt = y[i] - limit, y[i + 1] - limit, t[i + 1] - t[i]
        if a >= 0 and b >= 0:
            total += dt
        elif a > 0 or b > 0:
            total += dt * max(a, b) / abs(b - a)
    return float(total)


def settling_time(t: np.ndarray, y: np.ndarray, band: float = 0.02, target: float | None = None) -> float:
    """Last time the signal is outside ``band`` (relative to |target - y0|) around ``target``
    (default: the final value), measured from the start."""
    ref = float(y[-1]) if target is None else float(target)
    scale = abs(ref - float(y[0])) or abs(ref) or 1.0
    outside = np.nonzero(np.abs(y - ref) > band * scale)[0]
    if outside.size == 0:
        return 0.0
    last = int(outside[-1])
    return float(t[min(last + 1, len(t) - 1)] - t[0])


def overshoot(t: np.ndarray, y: np.ndarray, target: float | None = None) -> float:
    """Peak overshoot beyond the target (default: final value) relative to the step size, in percent."""
    ref = float(y[-1]) if target is None else float(target)
    step = ref - float(y[0])
    if step == 0:
        return 0.0
    peak = float(np.max(y)) if step > 0 else float(np.min(y))
    return float(max(0.0, (peak - ref) / step) * 100.0)


BUILTIN_REDUCERS: dict[str, KpiFunction] = {
    "final": final, "mean": mean, "max": maximum, "min": minimum, "integral": integral, "rms": rms,
    "time_above": time_above, "settling_time": settling_time, "overshoot": overshoot,
}


def builtin_registry() -> KpiRegistry:
    reg = KpiRegistry()
    reg.current_source = "fmi_optimizer"
    for name, fn in BUILTIN_REDUCERS.items():
        reg.add(name, fn)
    return reg


@dataclass(frozen=True)
class KpiSpec:
    """A parsed KPI expression: ``reducer(output, *args)``."""

    name: str
    reducer: str
    output: str
    args: tuple[float, ...] = ()

    @property
    def expression(self) -> str:
        return f"{self.reducer}({', '.join([self.output, *map(repr, self.args)])})"


def parse_kpi(name: str, expression: str, reducers: KpiRegistry,
              outputs: Sequence[str] | None = None, source: str = "") -> KpiSpec:
    """Parse ``"max(T_junction)"`` or ``"time_above(T, 350)"``; errors name the unknown part (and the study
    file ``source``)."""
    where = f"{source}: [kpis] {name} = {expression!r}" if source else f"KPI {name!r} = {expression!r}"
    try:
        node = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError as exc:
        raise StudyError(f"{where}: not of the form reducer(output, ...) ({exc.msg})") from exc
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or not node.args:
        raise StudyError(f"{where}: not of the form reducer(output, ...); e.g. \"max(T_junction)\"")
    reducer = node.func.id
    if reducer not in reducers:
        raise StudyError(f"{where}: unknown reducer {reducer!r}; known: {', '.join(reducers.names())}")
    output = output_name(node.args[0], where)
    if outputs is not None and output not in outputs:
        elements = [n for n in outputs if n.startswith(f"{output}[")]
        if elements:
            raise StudyError(f"{where}: {output!r} is an array; name one element, e.g. "
                             f"\"{reducer}({elements[0]})\" (elements: {', '.join(elements[:6])}"
                             f"{', ...' if len(elements) > 6 else ''})")
        close = difflib.get_close_matches(output, list(outputs), n=3)
        shown = [as_written(n) for n in list(outputs)[:20]]
        more = (f", ... ({len(outputs) - len(shown)} more: see 'fmi-optimizer inspect')"
                if len(outputs) > len(shown) else "")
        raise StudyError(f"{where}: the FMU has no variable {output!r}"
                         + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else "")
                         + f"; recordable variables, outputs first: {', '.join(shown) or 'none'}{more}")
    args: list[float] = []
    for a in node.args[1:]:
        try:
            args.append(float(ast.literal_eval(a)))
        except (ValueError, TypeError) as exc:
            raise StudyError(f"{where}: argument {ast.unparse(a)!r} must be a number") from exc
    return KpiSpec(name, reducer, output, tuple(args))


def as_written(name: str) -> str:
    """A variable name as a KPI expression takes it: bare when it may be (dots, brackets), else quoted."""
    bare = name.replace(".", "").replace("[", "").replace("]", "").replace("_", "").replace(",", "")
    return name if bare.isalnum() and not name[0].isdigit() else repr(name)


def output_name(node: ast.expr, where: str) -> str:
    """Variable names may contain dots and brackets (Modelica style): accept them; any other name is
    written as a quoted string, e.g. ``max('der(room.T)')``. ``A[1, 2]`` means the element ``A[1,2]``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    text = ast.unparse(node).replace(", ", ",")
    if not text.replace(".", "").replace("[",
                                         "").replace("]", "").replace("_", "").replace(",", "").isalnum():
        raise StudyError(f"{where}: first argument must be an output name, got {text!r}")
    return text


def compute_kpis(specs: Sequence[KpiSpec], t: np.ndarray, outputs: Mapping[str, np.ndarray],
                 reducers: KpiRegistry) -> dict[str, float]:
    """Every KPI of one trajectory (raises ValueError if a reducer fails)."""
    return {s.name: float(reducers.get(s.reducer)(t, outputs[s.output], *s.args)) for s in specs}
