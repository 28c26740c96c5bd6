"""Telling "the hub could not be reached" apart from "that name does not exist on the hub".

Model and data loading both turn the first into advice (work offline: pass a local path).
"""

from __future__ import annotations

__all__ = ["hub_unreachable"]


def hub_unreachable(exc: BaseException) -> bool:
    """Whether an exception chain says the hub could not be reached (vs. the name not existing)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return True
    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        text = str(seen).lower()
        if name in {
            "ConnectionError",
            "ConnectError",
            "ConnectTimeout",
            "OfflineModeIsEnabled",
            "LocalEntryNotFoundError",
            "Timeout",
            "ReadTimeout",
            "ProxyError",
        }:
            return True
        if "couldn't connect" in text or "offline mode" in text or "connection" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
