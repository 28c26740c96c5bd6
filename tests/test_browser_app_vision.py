"""The App on the offline ViT and the MNIST digits in JupyterLab (Chromium): its six tabs, a
thumbnail clicked in the Predict tab becomes the picked image with its prediction, the
Attention tab draws the picked image's attention over its patches, the Explain tab an
occlusion overlay with its legend; nothing fetched, no page error, nothing cut off at 700 px.
Element screenshots go to artifacts/app_vision_<tab>.png."""

from __future__ import annotations

import pathlib

import pytest

from tests.test_browser_app import (
    _CUT_OFF,
    APP,
    _button,
    _env,
    _opened,
    _own_errors,
    _relaid,
    _shot,
    _status_ok,
    _tab,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VISION_TABS = ["Model", "Data", "Train", "Predict", "Attention", "Explain"]


def _vision_notebook(root: pathlib.Path) -> str:
    from tests._jupyter import write_notebook

    write_notebook(
        root / "vision.ipynb",
        [
            "import labkit\n"
            "app = labkit.App(model=labkit.demo.vit(device='cpu'), data=labkit.demo.images())\n"
            "app",
        ],
    )
    return "vision.ipynb"


def _no_network(page) -> list[str]:
    """Every request the page makes outside the Jupyter server (there must be none)."""
    asked: list[str] = []
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else asked.append(r.url)
        ),
    )
    return asked


def test_the_vision_app_picks_a_digit_and_draws_attention_and_explanation_over_it(
    chromium, tmp_path: pathlib.Path
) -> None:
    from tests._jupyter import app_missing, jupyter_server

    if app_missing("lab"):
        pytest.fail(f"JupyterLab is missing (make install-dev installs it): {app_missing('lab')}")
    path = _vision_notebook(tmp_path)
    with (
        jupyter_server(tmp_path, app="lab", env=_env()) as server,
        _opened(chromium, server, path, "app_vision", width=1280) as page,
    ):
        asked = _no_network(page)
        _status_ok(page, "^Ready")
        assert page.locator(f"{APP} .lm-TabBar-tab").all_inner_texts() == VISION_TABS

        # Predict: the strip shows the test split's thumbnails; a click picks and predicts
        _tab(page, "Predict")
        items = page.locator(f"{APP} .labkit-image-strip-item")
        items.first.wait_for(state="visible")
        assert items.count() == 16
        assert page.locator(f"{APP} .labkit-image-strip-item img").first.evaluate(
            "(img) => img.complete && img.naturalWidth === 28"
        )
        items.nth(5).click()
        said = _status_ok(page, "^test image 5: predicted")
        page.wait_for_selector(f"{APP} .labkit-image-strip-selected[data-index='5']")
        page.wait_for_function(
            "() => /Prediction:/.test(document.querySelector('.labkit-app').innerText)"
        )
        index = page.locator(f"{APP} .widget-inline-hbox").filter(has_text="Image #")
        assert index.locator("input").input_value() == "5", said
        _shot(page, "app_vision_predict")

        # Attention: the picked digit under the class token's attention, then rollout
        _tab(page, "Attention")
        assert "test image 5" in page.inner_text(APP)
        _button(page, "Show attention").click()
        page.wait_for_selector(f"{APP} .lk-img[data-ready='1']", timeout=60_000)
        _status_ok(page, "^Attention of test image 5")
        assert page.get_attribute(f"{APP} .lk-img", "data-rows") == "4"
        drawn = page.locator(f"{APP} .lk-img-canvas").evaluate(
            "(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let lit = 0; for (let i = 0; i < d.length; i += 4) lit += d[i] + d[i+1] + d[i+2] > 0;"
            " return [c.width, lit]; }"
        )
        assert drawn[0] > 0 and drawn[1] > 0, drawn  # the image and its overlay are drawn
        _shot(page, "app_vision_attention")

        # Explain: occlusion for the predicted label, drawn over the digit with its legend
        _tab(page, "Explain")
        method = page.locator(f"{APP} select >> visible=true").first
        method.select_option("occlusion")
        _button(page, "Explain").click()
        said = _status_ok(page, "^Explained '", timeout=90_000)
        page.wait_for_selector(f"{APP} .lk-iattr[data-ready='1']", timeout=30_000)
        predicted = page.get_attribute(f"{APP} .lk-iattr", "data-target")
        assert f"Explained '{predicted}'" in said, said
        drawn = page.locator(f"{APP} .lk-iattr-canvas").evaluate(
            "(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let tinted = 0; for (let i = 0; i < d.length; i += 4)"
            " tinted += Math.abs(d[i] - d[i+1]) > 20; return [c.width, tinted]; }"
        )
        assert drawn[0] > 0 and drawn[1] > 0, drawn  # green / red over the gray image
        assert "against" in page.inner_text(f"{APP} .lk-iattr-legend")
        _shot(page, "app_vision_explain")

        # every tab fits a narrow window: nothing cut off, nothing scrolls sideways
        _relaid(page, 700, False)
        found = {}
        for tab in VISION_TABS:
            _tab(page, tab)
            cut = page.evaluate(_CUT_OFF)
            if cut:
                found[tab] = cut
        _tab(page, "Predict")
        _shot(page, "app_vision_fit_700_predict")
        assert not found, found
        assert not asked, asked
        assert not _own_errors(page), page.page_errors
