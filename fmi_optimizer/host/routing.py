"""Choose a method by name, or with ``auto`` by asking every registered method how well it fits."""

from __future__ import annotations

from fmi_optimizer.errors import PluginError
from fmi_optimizer.method import Method, Problem, unsupported_reason
from fmi_optimizer.registry import MethodRegistry


def choose_method(registry: MethodRegistry, name: str, problem: Problem) -> tuple[type[Method], str]:
    """Return the method class and a one-line explanation of the choice."""
    if name != "auto":
        cls = registry.get(name)
        why = unsupported_reason(cls.capabilities, problem)
        if why:
            fitting = [n for n in registry.names()
                       if not unsupported_reason(registry.get(n).capabilities, problem)]
            raise PluginError(f"method {name!r} cannot run this study: {why}; methods that can: "
                              f"{', '.join(fitting) or 'none'}")
        return cls, f"method {cls.name!r} chosen by name"
    scored = []
    for entry in registry.entries():
        try:
            fit = entry.cls.fit(problem)
        except Exception as exc:  # a plugin's broken fit() must not stop routing; it is reported
            raise PluginError(f"{entry.source}: {entry.cls.name}.fit() failed ({exc}); fix or block the "
                              "plugin") from exc
        if not unsupported_reason(entry.cls.capabilities, problem) and fit.score > 0:
            scored.append((fit.score, entry.cls.name, entry.cls, fit.reason))
    if not scored:
        raise PluginError("no registered method fits this study "
                          f"({', '.join(registry.names()) or 'none registered'}); name one with --method or "
                          "install a plugin")
    scored.sort(key=lambda s: (-s[0], s[1]))
    score, _, cls, reason = scored[0]
    others = ", ".join(f"{n} {s:.2f}" for s, n, _, _ in scored[1:4])
    return (cls, f"auto chose {cls.name!r} (fit {score:.2f}): {reason}"
            + (f" [others: {others}]" if others else ""))
