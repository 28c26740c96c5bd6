"""Optional libraries (captum, bertviz, the ui extra, the demo model), imported where used.

A missing one becomes a :class:`labkit.MissingDependencyError` that names the library, what
needed it and the extra that installs it, instead of a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from labkit._errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (e.g. ``"captum.attr"``) for ``feature``, which the ``extra`` installs.

    Raises :class:`MissingDependencyError` when ``module`` or a package above it is not
    installed. Any other import failure (a library of the optional one missing, a broken
    install) propagates unchanged: the install command would not fix it.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if not missing or not (module == missing or module.startswith(missing + ".")):
            raise
        raise MissingDependencyError(
            f"{missing} is not installed; {feature} needs it. "
            f'Install it with: pip install "labkit[{extra}]"',
            name=missing,
        ) from None
