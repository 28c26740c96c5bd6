"""Shared fixtures: tiny config-built models (fast, offline) and the real offline default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Hub access fails on CI machines; fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests import _tiny

_NO_GPU: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect ``gpu`` tests where torch sees no CUDA device, and say so in the summary."""
    import torch

    if torch.cuda.is_available():
        return
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
        _NO_GPU.append(f"{len(gpu)} gpu tests deselected: torch sees no CUDA device here")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _NO_GPU:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folder of a tiny saved classifier per architecture (bert, distilbert, roberta, gpt2, llama)."""
    root = tmp_path_factory.mktemp("tiny")
    return {arch: _tiny.build(arch, root / arch) for arch in _tiny.ARCHES}


@pytest.fixture(params=_tiny.ARCHES)
def tiny_arch_dir(request: pytest.FixtureRequest, tiny_dirs: dict[str, Path]) -> Path:
    return tiny_dirs[request.param]


@pytest.fixture
def tiny_model(tiny_dirs: dict[str, Path]):
    """A fresh tiny BERT classifier with labels negative/positive, on the CPU."""
    import labkit

    return labkit.load_model(tiny_dirs["bert"], labels=["negative", "positive"], device="cpu")


@pytest.fixture(scope="session")
def toy_data():
    """Small learnable sentiment data as TextData (train/validation)."""
    import labkit

    return labkit.load_data(_tiny.toy_rows(32), labels=["negative", "positive"])


@pytest.fixture(scope="session")
def demo_model_session():
    """The real offline default (all-MiniLM-L6-v2, new head), shared read-only across tests."""
    import labkit

    return labkit.demo.model(device="cpu")


@pytest.fixture(scope="session")
def demo_data():
    import labkit

    return labkit.demo.data()


@pytest.fixture(scope="session")
def chromium():
    """A headless Debian Chromium (Playwright). Skips loudly when missing; under
    LABKIT_REQUIRE_BROWSER=1 (set by .ci/run) a missing browser fails the test instead."""
    from tests._browser import CHROMIUM, CHROMIUM_ARGS, browser_missing

    reason = browser_missing()
    if reason:
        message = f"BROWSER TEST NOT RUN: {reason}"
        if os.environ.get("LABKIT_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    import tempfile

    from playwright.sync_api import sync_playwright

    home = tempfile.mkdtemp(prefix="labkit-chromium-")
    os.environ.setdefault("XDG_CONFIG_HOME", os.path.join(home, "config"))
    os.environ.setdefault("XDG_CACHE_HOME", os.path.join(home, "cache"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh page; console errors are collected in ``page.console_errors``."""
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.console_errors = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    yield pg
    context.close()
