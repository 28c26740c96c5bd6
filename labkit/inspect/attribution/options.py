"""The attribution methods and their options: names, aliases, defaults and validation."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from labkit._errors import ConfigError
from labkit.inspect.budget import parse_budget

__all__ = ["METHODS", "method_name", "method_options", "validate"]

_ALL = {"faithfulness": False, "memory_budget": "auto"}
_GRAD = {**_ALL, "output": "probability", "embeddings": None}
_BASED = {**_GRAD, "baseline": "pad"}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {**_BASED, "n_steps": 50, "max_steps": 800, "tolerance": 0.01},
    "gradient_x_input": dict(_GRAD),
    "saliency": dict(_GRAD),
    "gradient_shap": {**_BASED, "n_samples": 20, "stdevs": 0.0, "seed": 0},
    "occlusion": {**_BASED, "window": 1},
    "lime": {**_BASED, "n_samples": 200, "alpha": 0.01, "seed": 0},
    "kernel_shap": {**_BASED, "n_samples": 200, "seed": 0},
    "attention_rollout": dict(_ALL),
}
METHODS: tuple[str, ...] = tuple(_DEFAULTS)
_ALIASES = {
    "ig": "integrated_gradients",
    "layer_integrated_gradients": "integrated_gradients",
    "input_x_gradient": "gradient_x_input",
    "grad_x_input": "gradient_x_input",
    "gradientshap": "gradient_shap",
    "kernelshap": "kernel_shap",
    "shap": "kernel_shap",
    "rollout": "attention_rollout",
}
# methods whose examples are computed one at a time (their randomness or baselines are per text)


def method_options(method: str) -> dict[str, Any]:
    """The options ``method`` accepts, with their defaults."""
    return dict(_DEFAULTS[method_name(method)])


def resolve_method(
    method: Any, known: Sequence[str], aliases: Mapping[str, str]
) -> tuple[str | None, str]:
    """``method`` normalised (case, dashes, spaces) and its alias followed: (the name, "") when
    it is one of ``known``, else (None, a " Did you mean ...?" hint or ""). The one spelling
    rule for classifier and causal-LM method names; each caller raises its own error."""
    if not isinstance(method, str):
        return None, f" method must be a string, got {type(method).__name__}."
    key = method.strip().lower().replace("-", "_").replace(" ", "_")
    key = aliases.get(key, key)
    if key in known:
        return key, ""
    close = difflib.get_close_matches(key, [*known, *aliases], n=1)
    return None, (f" Did you mean {aliases.get(close[0], close[0])!r}?" if close else "")


def method_name(method: str) -> str:
    if not isinstance(method, str):
        raise ConfigError(f"method must be a string, got {type(method).__name__}.")
    name, hint = resolve_method(method, METHODS, _ALIASES)
    if name is not None:
        return name
    raise ConfigError(f"unknown method {method!r}.{hint} Available: {', '.join(METHODS)}.")


def validate(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """Defaults of ``method`` updated with ``given``, validated."""
    allowed = _DEFAULTS[method]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{method} does not take option(s) {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(allowed))}."
        )
    opts = {**allowed, **given}

    def check(name: str, ok: bool, want: str) -> None:
        if name in given and not ok:
            raise ConfigError(f"{name} must be {want}, got {given[name]!r}.")

    def is_int(v: Any, low: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    check("n_steps", is_int(opts.get("n_steps"), 2), "an int >= 2")
    check("max_steps", is_int(opts.get("max_steps"), 2), "an int >= 2")
    if "max_steps" in opts and opts["max_steps"] < opts["n_steps"]:
        if "max_steps" in given:
            raise ConfigError(
                f"max_steps ({opts['max_steps']}) is below n_steps "
                f"({opts['n_steps']}); set max_steps >= n_steps (equal turns the "
                "escalation off)."
            )
        opts["max_steps"] = opts["n_steps"]  # a large n_steps alone: no escalation beyond it
    tol = opts.get("tolerance")
    check(
        "tolerance",
        tol is None or (isinstance(tol, int | float) and tol > 0),
        "None (no escalation) or a number > 0",
    )
    check("output", opts.get("output") in ("probability", "logit"), "'probability' or 'logit'")
    base = opts.get("baseline")
    check(
        "baseline",
        base in ("pad", "unk", "mask") or is_int(base, 0),
        "'pad', 'unk', 'mask' or a token id",
    )
    check("n_samples", is_int(opts.get("n_samples"), 1), "an int >= 1")
    check("seed", is_int(opts.get("seed"), 0), "an int >= 0")
    check("window", is_int(opts.get("window"), 1), "an int >= 1 (tokens)")
    for name in ("stdevs", "alpha"):
        v = opts.get(name)
        check(
            name, isinstance(v, int | float) and not isinstance(v, bool) and v >= 0, "a number >= 0"
        )
    check("faithfulness", isinstance(opts.get("faithfulness"), bool), "True or False")
    opts["memory_budget"] = parse_budget(opts["memory_budget"]) or "auto"
    return opts
