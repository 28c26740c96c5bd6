"""Shared fixtures: tiny config-built models (fast, offline) and the real offline default."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Hub access fails on CI machines; fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# every run registers its folder (labkit.runs.registry): keep the tests' runs out of the
# user's own list
os.environ.setdefault("LABKIT_STATE_DIR", tempfile.mkdtemp(prefix="labkit-state-"))

from tests import _tiny

# jupyter_server's test fixtures (jp_fetch, jp_serverapp, ...) for tests/test_server.py
pytest_plugins = ["pytest_jupyter.jupyter_server"]

_DESELECTED: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ipywidgets7",
        action="store_true",
        default=False,
        help="this run has the ipywidgets 7.7.1 overlay first on the path (make "
        "test-ipywidgets7): run the ipywidgets7 tests, which assert that it is what got imported",
    )


def _deselect(config: pytest.Config, items: list[pytest.Item], marker: str, why: str) -> None:
    """Drop the ``marker`` tests from this run and say so in the summary (not a silent skip)."""
    chosen = [item for item in items if item.get_closest_marker(marker)]
    if chosen:
        config.hook.pytest_deselected(items=chosen)
        items[:] = [item for item in items if not item.get_closest_marker(marker)]
        _DESELECTED.append(f"{len(chosen)} {marker} tests deselected: {why}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect ``gpu`` tests where torch sees no CUDA device, and ``ipywidgets7`` tests outside
    the overlay run; both are listed in the summary."""
    if not config.getoption("--ipywidgets7"):
        _deselect(
            config,
            items,
            "ipywidgets7",
            "they check the ipywidgets 7.7.1 overlay run (make test-ipywidgets7)",
        )
    # the jupyter_server tests first: once a browser test has started Playwright (its browser
    # lives for the session), its sync API's loop is this thread's running loop, and
    # pytest-jupyter's loop fixture would get that one ("This event loop is already running")
    items.sort(key=lambda item: item.get_closest_marker("jupyter_server") is None)
    import torch

    if not torch.cuda.is_available():
        _deselect(config, items, "gpu", "torch sees no CUDA device here")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _DESELECTED:
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def jp_asyncio_loop(request: pytest.FixtureRequest):
    """pytest-jupyter's event loop (its own fixture is autouse for every test), only for the
    tests marked ``jupyter_server``: the browser tests drive Playwright's sync API, which runs a
    loop of its own, and closing that loop at their teardown fails them."""
    if request.node.get_closest_marker("jupyter_server") is None:
        yield None
        return
    import warnings

    from jupyter_core.utils import ensure_event_loop

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*WindowsSelectorEventLoopPolicy.*")
        loop = ensure_event_loop(prefer_selector_loop=True)
    yield loop
    loop.close()


@pytest.fixture(autouse=True)
def jp_server_cleanup(request: pytest.FixtureRequest, jp_asyncio_loop):
    """pytest-jupyter's clean-up of the ServerApp its fixtures made (autouse too), for the
    ``jupyter_server`` tests alone: for the others there is no server and no loop."""
    yield
    if jp_asyncio_loop is None:
        return
    from jupyter_server.serverapp import ServerApp

    app = ServerApp.instance()
    with contextlib.suppress(RuntimeError, SystemExit):
        jp_asyncio_loop.run_until_complete(app._cleanup())
    if hasattr(app, "kernel_manager"):
        app.kernel_manager.context.destroy()
    ServerApp.clear_instance()


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folder of a tiny saved classifier per architecture (bert, distilbert, roberta, gpt2, llama)."""
    root = tmp_path_factory.mktemp("tiny")
    return {arch: _tiny.build(arch, root / arch) for arch in _tiny.ARCHES}


@pytest.fixture(params=_tiny.ARCHES)
def tiny_arch_dir(request: pytest.FixtureRequest, tiny_dirs: dict[str, Path]) -> Path:
    return tiny_dirs[request.param]


@pytest.fixture(scope="session")
def tiny_lm_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folder of a tiny saved causal LM per architecture (gpt2, llama) and "chat": a Llama
    whose tokenizer has a chat template."""
    root = tmp_path_factory.mktemp("tiny_lm")
    dirs = {arch: _tiny.build_lm(arch, root / arch) for arch in _tiny.LM_ARCHES}
    dirs["chat"] = _tiny.build_lm("llama", root / "chat", chat=True)
    return dirs


@pytest.fixture
def tiny_lm(tiny_lm_dirs: dict[str, Path]):
    """A fresh tiny Llama causal LM on the CPU."""
    import labkit

    return labkit.load_model(tiny_lm_dirs["llama"], device="cpu")


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
def demo_baseline(demo_model_session, demo_data):
    """The untrained default's metrics on the demo test split (evaluated once a session)."""
    return demo_model_session.evaluate(demo_data, split="test")


@dataclass(frozen=True)
class Finetuned:
    """The real default after one short LoRA finetune (see ``finetuned_default``)."""

    before: Any  # labkit Metrics of the untrained model on the demo test split
    run: Any  # the finished labkit Run (history, metrics, checkpoints)
    model: Any  # the trained LoRA model the run holds
    merged: Any  # ``run.export``'s folder loaded back: the adapter merged, a plain model
    merged_path: Path


@pytest.fixture(scope="session")
def finetuned_default(
    tmp_path_factory: pytest.TempPathFactory, demo_model_session, demo_data, demo_baseline
) -> Finetuned:
    """The real offline default (all-MiniLM-L6-v2) after ONE short LoRA finetune on the demo
    data (the demo recipe's settings, about one epoch: ~0.8 test accuracy), shared by every
    acceptance test of a finetuned model so the session trains it once. Read-only: a test that
    changes a model deep-copies it first (``copy.deepcopy``)."""
    import copy

    import labkit

    model = copy.deepcopy(demo_model_session)  # training changes it; the shared one stays
    root = tmp_path_factory.mktemp("finetuned-default")
    run = labkit.finetune(
        model,
        demo_data,
        lora=True,
        max_steps=120,
        batch_size=32,
        lr=2e-3,
        max_length=64,
        warmup=0.06,
        output_dir=root / "run",
        progress=False,
    ).wait()
    assert run.status == "finished", run.error
    merged_path = Path(run.export(root / "merged"))
    merged = labkit.load_model(merged_path, device="cpu")
    return Finetuned(
        before=demo_baseline, run=run, model=model, merged=merged, merged_path=merged_path
    )


@pytest.fixture(scope="session")
def chromium():
    """A headless Debian Chromium (Playwright). Where it is missing the ``browser`` tests fail,
    never skip: install it or deselect them."""
    from tests._browser import CHROMIUM, CHROMIUM_ARGS, browser_missing

    reason = browser_missing()
    if reason:
        pytest.fail(
            f"BROWSER TEST NOT RUN: {reason}. `make browser` installs Chromium (apt-get install "
            "chromium), the dev extra playwright; or deselect these tests with -m 'not browser'.",
            pytrace=False,
        )
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
