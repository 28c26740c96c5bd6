"""One error family for everything labkit refuses, and one warning class.

Every message says what was found and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "GenerationError",
    "InputError",
    "LabkitError",
    "LabkitWarning",
    "MissingDependencyError",
    "ModelLoadError",
    "TrainingError",
]


class LabkitError(Exception):
    """Base class of every error labkit raises on purpose."""


class ModelLoadError(LabkitError):
    """A model or tokenizer could not be loaded (missing path, hub unreachable, unsafe weights)."""


class MissingDependencyError(LabkitError, ImportError):
    """An optional library is not installed; the message names it and the extra to install.

    ``name`` (as on any ImportError) is the module that is missing. Being an ImportError too,
    it still reaches ``except ImportError`` fallbacks (static HTML when the ui extra is missing).
    """


class DataError(LabkitError, ValueError):
    """A dataset is missing a column, holds unknown labels, or cannot be read."""


class InputError(LabkitError, ValueError):
    """An argument of a call is unusable: empty list of texts, a non-string text, unknown label."""


class ConfigError(LabkitError, ValueError):
    """A configuration value is invalid; the message names the field."""


class TrainingError(LabkitError, RuntimeError):
    """A training run could not start or ended in a way the caller must handle."""


class GenerationError(TrainingError):
    """A generation running in the background failed or was asked for before it finished."""


class LabkitWarning(UserWarning):
    """Something was adjusted for the caller (e.g. texts truncated to the model's limit)."""
