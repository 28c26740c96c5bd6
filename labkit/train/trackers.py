"""The usual trackers (TensorBoard, Weights & Biases, ...) next to labkit's own run record.

``finetune(..., report_to="tensorboard")`` hands the names to ``Trainer``'s ``report_to``: the
trainer's own integration callbacks do the logging. labkit adds three things: a missing package
is a :class:`labkit.MissingDependencyError` before training starts (naming the package and the
extra), TensorBoard's event files go in ``<output_dir>/tensorboard`` (transformers' default is
``<output_dir>/runs/<time>_<host>``), and wandb writes into the run's folder, offline unless
the user chose a mode or has credentials (``wandb.init`` must never prompt for a login on the
training thread), under the run's name, in the project WANDB_PROJECT (default ``labkit``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import Any

from labkit._errors import ConfigError, MissingDependencyError

__all__ = [
    "TENSORBOARD_DIR",
    "WANDB_DIR",
    "available",
    "check_available",
    "close",
    "install",
    "normalize",
    "wandb_mode",
]

TENSORBOARD_DIR = "tensorboard"  # inside the run's output_dir
WANDB_DIR = "."  # wandb makes its own "wandb/" folder inside the run's output_dir

# tracker -> (the module it imports, the labkit extra that installs it; None: pip install it)
_PACKAGES: dict[str, tuple[str, str | None]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", None),
    "comet_ml": ("comet_ml", None),
    "neptune": ("neptune", None),
    "clearml": ("clearml", None),
    "dvclive": ("dvclive", None),
    "codecarbon": ("codecarbon", None),
    "azure_ml": ("azureml", None),
    "dagshub": ("dagshub", None),
    "flyte": ("flytekit", None),
    "swanlab": ("swanlab", None),
    "trackio": ("trackio", None),
    "kubeflow": ("kubeflow", None),
}


def _known() -> tuple[str, ...]:
    """The trackers this transformers has an integration for."""
    try:
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK
    except ImportError:  # pragma: no cover - an older transformers
        return tuple(_PACKAGES)
    return tuple(INTEGRATION_TO_CALLBACK)


def normalize(report_to: Any) -> tuple[str, ...]:
    """``report_to`` as a tuple of tracker names: None, ``"none"`` or ``()`` -> ``()``; a name,
    a comma list (``"tensorboard,wandb"``) or a list of names -> those names, each once;
    ``"all"`` -> every installed tracker (transformers' meaning). Raises ``ConfigError`` for a
    name transformers has no integration for."""
    if report_to is None:
        return ()
    if isinstance(report_to, str):
        items: list[Any] = report_to.split(",")
    elif isinstance(report_to, Sequence):
        items = [part for x in report_to for part in (x.split(",") if isinstance(x, str) else [x])]
    else:
        raise ConfigError(
            "report_to must be None, a tracker's name (e.g. 'tensorboard' or 'wandb') or a list "
            f"of names, got {type(report_to).__name__} {report_to!r:.60}."
        )
    names: list[str] = []
    known = _known()
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"report_to must hold tracker names (strings), found {item!r:.40}.")
        name = item.strip().lower()
        if name in ("", "none"):
            continue
        if name == "all":
            names.extend(n for n in known if available(n))
            continue
        if name not in known:
            raise ConfigError(
                f"report_to: unknown tracker {item!r}; transformers integrates "
                f"{', '.join(sorted(known))} (or 'none')."
            )
        names.append(name)
    return tuple(dict.fromkeys(names))


def available(name: str) -> bool:
    """Whether tracker ``name``'s package can be imported (found, without importing it)."""
    module = _PACKAGES.get(name, (name, None))[0]
    if module in sys.modules:
        return sys.modules[module] is not None  # None: marked missing on purpose
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_available(names: Sequence[str]) -> None:
    """Raise :class:`MissingDependencyError` for the first tracker whose package is missing."""
    for name in names:
        if available(name):
            continue
        module, extra = _PACKAGES.get(name, (name, None))
        how = f'pip install "labkit[{extra}]"' if extra else f"pip install {module}"
        raise MissingDependencyError(
            f"report_to={name!r} needs the {module} package, which is not installed. Install "
            f"it with: {how} (or leave {name!r} out of report_to).",
            name=module,
        )


def wandb_mode() -> str | None:
    """The mode labkit gives ``wandb.init``: WANDB_MODE when the user set it (read now: wandb
    reads its environment once a process), None (wandb decides) when there are credentials
    (WANDB_API_KEY, or a login in ~/.netrc), else ``"offline"``."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return None
    import netrc

    try:
        found = netrc.netrc(os.environ.get("NETRC") or None).authenticators("api.wandb.ai")
    except (OSError, netrc.NetrcParseError):
        found = None
    return None if found else "offline"


def install(trainer: Any, names: Sequence[str], *, output_dir: str, run_name: str) -> None:
    """Point the trainer's tracker callbacks at the run: TensorBoard's event files in
    ``<output_dir>/tensorboard`` (unless TENSORBOARD_LOGGING_DIR says otherwise), wandb's
    files in ``output_dir`` (unless WANDB_DIR does), offline without credentials, named
    ``run_name``."""
    if "tensorboard" in names:
        from transformers.integrations import TensorBoardCallback

        for cb in trainer.callback_handler.callbacks:
            if isinstance(cb, TensorBoardCallback) and not os.environ.get(
                "TENSORBOARD_LOGGING_DIR"
            ):
                cb.logging_dir = os.path.join(output_dir, TENSORBOARD_DIR)
    if "wandb" in names:
        from transformers.integrations import WandbCallback

        trainer.remove_callback(WandbCallback)
        trainer.add_callback(_wandb_callback(output_dir, run_name))


def _wandb_callback(output_dir: str, run_name: str) -> Any:
    from transformers.integrations import WandbCallback

    class LabkitWandbCallback(WandbCallback):
        """transformers' wandb integration with the run started by labkit: in the run's
        folder, offline without credentials, named as the run; finished at the end."""

        def setup(self, args: Any, state: Any, model: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero and self._wandb.run is None:
                init: dict[str, Any] = {
                    "project": os.getenv("WANDB_PROJECT", "labkit"),
                    "name": run_name,
                    "dir": os.environ.get("WANDB_DIR") or os.path.join(output_dir, WANDB_DIR),
                }
                mode = wandb_mode()
                if mode is not None:
                    init["mode"] = mode
                self._wandb.init(**init)
                self._labkit_started = True
            super().setup(args, state, model, **kwargs)

        def on_train_end(
            self,
            args: Any,
            state: Any,
            control: Any,
            model: Any = None,
            processing_class: Any = None,
            **kwargs: Any,
        ) -> None:
            super().on_train_end(args, state, control, model, processing_class, **kwargs)
            self.finish()

        def finish(self) -> None:
            """End the wandb run labkit started (its files flushed); idempotent."""
            if getattr(self, "_labkit_started", False):
                self._labkit_started = False
                if self._wandb.run is not None:
                    self._wandb.finish()

    return LabkitWandbCallback()


def close(trainer: Any) -> None:
    """End what :func:`install` started, also when training failed before its end."""
    for cb in trainer.callback_handler.callbacks:
        finish = getattr(cb, "finish", None)
        if type(cb).__name__ == "LabkitWandbCallback" and callable(finish):
            finish()
