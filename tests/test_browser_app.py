"""The App in a real browser: notebooks/01_quickstart in JupyterLab 4 (train, attention, explain)
and in Notebook 7, with a tiny BERT and the offline demo data; and that nothing in it is cut off
at 1280 px and at 700 px. A causal LM's App: a generation streams and Stop stops it, and its
seven tabs fit too. Element screenshots of the App go to artifacts/ (app_lab.png is the one
the README shows, copied to docs/app.png; app_fit_<width>[_no_sidebar]_<tab>.png the layout at each width,
app_lm_fit_<width>_<tab>.png the causal LM's)."""

from __future__ import annotations

import os
import pathlib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import nbformat
import pytest

from tests._browser import ARTIFACTS
from tests.test_notebooks import with_parameters

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "01_quickstart.ipynb"
HOSTILE = '<img src=x onerror="window.__pwned=1">'
APP = ".labkit-app"
STATUS = ".labkit-app .labkit-app-status"


def _quickstart(root: pathlib.Path, **values: object) -> str:
    """Copy 01_quickstart into ``root`` with ``values`` injected after its parameters cell;
    ``MODEL="tiny-bert"`` builds that model in ``root`` (relative, so the App shows its name)."""
    from tests import _tiny

    if values.get("MODEL") == "tiny-bert":
        _tiny.build("bert", root / "tiny-bert")
    nb = nbformat.read(QUICKSTART, as_version=4)
    if values:
        nb = with_parameters(nb, values)
    nbformat.write(nb, str(root / "quickstart.ipynb"))
    return "quickstart.ipynb"


def _env() -> dict[str, str]:
    return {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def _shot(page, name: str) -> pathlib.Path:
    """An element screenshot of the App (the README uses app_lab.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.locator(APP).screenshot(path=str(path), animations="disabled")
    return path


def _tab(page, title: str) -> None:
    tab = page.locator(f"{APP} .lm-TabBar-tab").filter(has_text=re.compile(rf"^\s*{title}\s*$"))
    tab.click()
    page.wait_for_function(
        "(t) => [...document.querySelectorAll('.labkit-app .lm-TabBar-tab.lm-mod-current')]"
        ".some((e) => e.textContent.trim() === t)",
        arg=title,
    )


def _button(page, text: str):
    return page.locator(f"{APP} button.jupyter-button").filter(
        has_text=re.compile(rf"^\s*{re.escape(text)}\s*$")
    )


TABS = ["Model", "Data", "Train", "Attention", "Explain", "Compare", "Compress"]


def _status_ok(page, pattern: str, timeout: float = 60_000) -> str:
    """Wait until the App's status line is 'ok' and matches ``pattern``; return its text.

    An 'error' status fails at once with the App's message instead of timing out."""
    page.wait_for_function(
        """(p) => { const s = document.querySelector('.labkit-app .labkit-app-status');
                    return s && (s.dataset.kind === 'error'
                                 || (s.dataset.kind === 'ok' && new RegExp(p).test(s.textContent)));
                  }""",
        arg=pattern,
        timeout=timeout,
    )
    text = page.inner_text(STATUS)
    assert page.get_attribute(STATUS, "data-kind") == "ok", f"the App reports an error: {text}"
    return text


@contextmanager
def _opened(chromium, server, path: str, name: str, width: int = 1100) -> Iterator[Any]:
    """The notebook at ``path``, run; on failure the server's log and a screenshot
    (artifacts/<name>_failure.png) are kept."""
    from tests._jupyter import open_notebook, run_all

    context = chromium.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.page_errors = []
    page.on("pageerror", lambda e: page.page_errors.append(str(e)))
    try:
        open_notebook(page, server, path)
        run_all(page)
        page.wait_for_selector(APP, state="visible", timeout=120_000)
        yield page
    except Exception:
        print(server.log_tail(), file=sys.stderr)
        page.screenshot(path=str(ARTIFACTS / f"{name}_failure.png"), full_page=True)
        raise
    finally:
        context.close()


def _own_errors(page) -> list[str]:
    return [e for e in page.page_errors if "labkit" in e or "anywidget" in e]


def test_quickstart_in_jupyterlab_trains_shows_attention_and_explains(
    chromium, tmp_path: pathlib.Path
) -> None:
    from tests._jupyter import app_missing, jupyter_server

    if app_missing("lab"):
        pytest.fail(f"JupyterLab is missing (make install-dev installs it): {app_missing('lab')}")
    path = _quickstart(tmp_path, MODEL="tiny-bert", DATA=None, TRAIN_STEPS=40)
    with (
        jupyter_server(tmp_path, app="lab", env=_env()) as server,
        _opened(chromium, server, path, "app_lab") as page,
    ):
        ready = _status_ok(page, "^Ready")
        assert "tiny-bert" in ready and "rotten_tomatoes" in ready
        assert page.locator(f"{APP} .lm-TabBar-tab").all_inner_texts() == TABS
        model_info = page.inner_text(f"{APP} .labkit-model")
        assert "tiny-bert" in model_info and "negative, positive" in model_info
        page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
        _shot(page, "app_lab")

        # Train: Start shows the live panel; points arrive; the run finishes
        _tab(page, "Train")
        max_steps = page.locator(f"{APP} .widget-inline-hbox").filter(has_text="Max steps")
        assert max_steps.locator("input").input_value() == "40"  # TRAIN_STEPS reached it
        _button(page, "Start training").click()
        page.wait_for_function(
            """() => { const s = document.querySelector('.labkit-app .labkit-panel .labkit-svg');
                       return s && Number(s.dataset.points) > 0; }""",
            timeout=60_000,
        )
        page.wait_for_selector(
            f"{APP} .labkit-panel .labkit-status[data-status='finished']", timeout=90_000
        )
        points = int(page.get_attribute(f"{APP} .labkit-panel .labkit-svg", "data-points"))
        assert points == 40, points  # one point a step, none lost
        assert page.inner_text(f"{APP} .labkit-panel .labkit-progress-text").startswith(
            "step 40 / 40"
        )
        path_d = page.get_attribute(f"{APP} .labkit-panel .labkit-raw", "d") or ""
        assert path_d.count("L") > 0  # the loss line is drawn
        _status_ok(page, "^Training finished: 40 steps")
        _shot(page, "app_train")
        _tab(page, "Model")  # the model now carries the LoRA adapter it was trained with
        page.wait_for_function(
            "() => /LoRA\\s*yes/.test(document.querySelector('.labkit-app .labkit-model')"
            ".innerText)"
        )

        # Attention: the head view of the example text
        _tab(page, "Attention")
        _button(page, "Show attention").click()
        page.wait_for_selector(f"{APP} .lk-attn[data-ready='1']", timeout=60_000)
        tokens = page.locator(f"{APP} .lk-attn .lk-left .lk-tok").all_inner_texts()
        assert "gorgeous" in tokens and tokens[0] == "[CLS]", tokens
        _status_ok(page, "^Attention of")
        _shot(page, "app_attention")

        # Explain: tokens coloured by attribution
        _tab(page, "Explain")
        _button(page, "Explain").click()
        page.wait_for_selector(f"{APP} .labkit-attr .labkit-attr-token", timeout=60_000)
        _status_ok(page, "^Explained")
        alphas = page.evaluate(
            """() => [...document.querySelectorAll('.labkit-app .labkit-attr-token')]
               .map((t) => getComputedStyle(t).backgroundColor)"""
        )
        coloured = [c for c in alphas if _alpha(c) > 0.05]
        assert coloured, f"no token is coloured: {alphas}"
        words = page.locator(f"{APP} .labkit-attr-token").all_inner_texts()
        assert "gorgeous" in words, words
        _shot(page, "app_explain")

        # a hostile text is shown literally and never runs
        area = page.locator(f"{APP} textarea >> visible=true")
        area.fill(HOSTILE)
        _button(page, "Explain").click()
        page.wait_for_function(
            """() => [...document.querySelectorAll('.labkit-app .labkit-attr-token')]
               .some((t) => t.textContent.includes('window'))""",
            timeout=60_000,
        )
        _status_ok(page, "^Explained")
        shown = "".join(page.locator(f"{APP} .labkit-attr-token").all_inner_texts())
        assert HOSTILE.replace(" ", "") in shown, shown
        assert page.locator(f"{APP} img").count() == 0
        assert page.evaluate("() => window.__pwned") is None

        # Compare: before (the LoRA adapter off) and after, on one colour scale, labelled
        _tab(page, "Compare")
        _button(page, "Compare before / after").click()
        _status_ok(page, "^Compared", timeout=90_000)
        legends = page.locator(f"{APP} .labkit-attr-legend >> visible=true")
        assert legends.count() == 2
        scales = [legends.nth(i).get_attribute("data-scale") for i in range(2)]
        assert scales[0] == scales[1] and float(scales[0]) > 0, scales
        labels = page.locator(f"{APP} .labkit-attr-scale >> visible=true").all_inner_texts()
        assert len(set(labels)) == 1 and labels[0].startswith("shared scale ±"), labels
        assert "adapter turned off" in page.inner_text(f"{APP} .labkit-compare + p")
        _shot(page, "app_compare")
        assert not _own_errors(page), page.page_errors


def _alpha(css: str) -> float:
    """Opacity of a computed CSS colour ('rgb(...)' is opaque; white counts as no colour)."""
    nums = [float(x) for x in re.findall(r"[\d.]+", css)]
    if len(nums) < 3 or nums[:3] == [255.0, 255.0, 255.0]:
        return 0.0
    return nums[3] if len(nums) > 3 else 1.0


def test_quickstart_in_notebook7_renders_the_app(chromium, tmp_path: pathlib.Path) -> None:
    """The notebook as shipped (no parameters): the offline default model and data."""
    from tests._jupyter import app_missing, jupyter_server

    if app_missing("notebook"):
        pytest.fail(
            f"Notebook 7 is missing (make install-dev installs it): {app_missing('notebook')}"
        )
    path = _quickstart(tmp_path)
    with (
        jupyter_server(tmp_path, app="notebook", env=_env()) as server,
        _opened(chromium, server, path, "app_notebook7") as page,
    ):
        _status_ok(page, "^Ready")
        tabs = page.locator(f"{APP} .lm-TabBar-tab")
        tabs.first.wait_for(state="visible")
        assert tabs.all_inner_texts() == TABS
        assert "all-MiniLM-L6-v2" in page.inner_text(f"{APP} .labkit-model")
        _tab(page, "Data")
        assert page.locator(f"{APP} .labkit-preview tbody tr").count() > 0
        _tab(page, "Model")
        _shot(page, "app_notebook7")
        assert not _own_errors(page), page.page_errors


# Everything the App writes that ipywidgets may cut with an ellipsis (labels, buttons, tab
# titles), every input whose placeholder, value or chosen option may not fit, and the App
# itself (no horizontal scrolling): a list of what is cut, empty when all fits.
_CUT_OFF = """() => {
  const app = document.querySelector('.labkit-app');
  const shown = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden';
  };
  const ctx = document.createElement('canvas').getContext('2d');
  const width = (e, text) => {
    const cs = getComputedStyle(e);
    ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    return ctx.measureText(text).width;
  };
  const cut = [];
  const say = (e, text, need, room) => cut.push(
    `${e.tagName.toLowerCase()}.${[...e.classList].join('.')} "${text.trim().slice(0, 50)}"`
    + ` needs ${Math.ceil(need)}px, has ${Math.floor(room)}px`);
  const texts = '.widget-label, .widget-label-basic, button, .lm-TabBar-tabLabel, label';
  for (const e of app.querySelectorAll(texts)) {
    if (shown(e) && e.scrollWidth > e.clientWidth + 1) say(e, e.textContent, e.scrollWidth, e.clientWidth);
  }
  for (const e of app.querySelectorAll('input, textarea, select')) {
    if (!shown(e) || e.type === 'file' || e.type === 'hidden' || e.type === 'checkbox') continue;
    const cs = getComputedStyle(e);
    const room = e.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const words = e.tagName === 'SELECT'
      ? [e.options[e.selectedIndex] ? e.options[e.selectedIndex].text : '']
      : [e.placeholder || '', e.tagName === 'TEXTAREA' ? '' : e.value];
    for (const t of words) if (t && width(e, t) > room) say(e, t, width(e, t), room);
  }
  if (app.scrollWidth > app.clientWidth + 1) say(app, 'the App', app.scrollWidth, app.clientWidth);
  return cut;
}"""


def _relaid(page, width: int, sidebar: bool) -> None:
    """Resize the window to ``width`` px, with the file browser open or not, and wait until
    JupyterLab has laid the notebook out again (the App's box follows the window)."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.evaluate(
        "(open) => { const app = window.jupyterapp;"
        " if (app.shell.leftCollapsed === open) app.commands.execute('application:toggle-left-area'); }",
        sidebar,
    )
    page.wait_for_function(
        "(w) => window.innerWidth === w"
        " && document.querySelector('#main').getBoundingClientRect().right <= w",
        arg=width,
    )
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def test_nothing_in_the_app_is_cut_off_at_1280_or_700_px(chromium, tmp_path: pathlib.Path) -> None:
    """Every tab at 1280 px (the file browser open) and at 700 px (a narrow window): no label,
    button, tab title, placeholder or chosen option is cut off, nothing scrolls sideways.
    Screenshots: artifacts/app_fit_<width>[_no_sidebar]_<tab>.png."""
    from tests._jupyter import app_missing, jupyter_server

    if app_missing("lab"):
        pytest.fail(f"JupyterLab is missing (make install-dev installs it): {app_missing('lab')}")
    path = _quickstart(tmp_path, MODEL="tiny-bert", DATA=None)
    with (
        jupyter_server(tmp_path, app="lab", env=_env()) as server,
        _opened(chromium, server, path, "app_fit", width=1280) as page,
    ):
        _status_ok(page, "^Ready")
        found: dict[str, list[str]] = {}
        for width, sidebar in ((1280, True), (700, False), (700, True)):
            _relaid(page, width, sidebar)
            for tab in TABS:
                _tab(page, tab)
                if tab == "Explain" and not page.locator(f"{APP} .labkit-attr").count():
                    _button(page, "Explain").click()  # the view's own pickers count too
                    page.wait_for_selector(f"{APP} .labkit-attr .labkit-attr-token")
                    _status_ok(page, "^Explained")
                _shot(page, f"app_fit_{width}{'' if sidebar else '_no_sidebar'}_{tab.lower()}")
                cut = page.evaluate(_CUT_OFF)
                if cut:
                    found[f"{width}px {'' if sidebar else 'no '}file browser, {tab}"] = cut
        assert not found, "\n".join(f"{where}: {cut}" for where, cut in found.items())
        assert not _own_errors(page), page.page_errors


LM_TABS = ["Model", "Data", "Train", "Generate", "Attention", "Explain", "Compare"]


def _lm_notebook(root: pathlib.Path) -> str:
    """A notebook whose App holds a tiny chat LM (from a folder next to it) and instruction
    data. Each forward pass of the model waits 30 ms, so a generation of 100 tokens lasts
    seconds: long enough to watch it grow and to press Stop mid-way."""
    from tests import _tiny
    from tests._jupyter import write_notebook

    _tiny.build_lm("llama", root / "tiny-lm", chat=True)
    rows = [
        {
            "prompt": f"Review: {r['text']}\nIs this review positive or negative?",
            "response": r["label"],
        }
        for r in _tiny.toy_rows(8)
    ]
    write_notebook(
        root / "lm.ipynb",
        [
            "import time\nimport labkit\n"
            "lm = labkit.load_model('tiny-lm')\n"
            "lm.hf.register_forward_hook(lambda *_: time.sleep(0.03))\n"
            f"data = labkit.load_data({rows!r}, task='causal-lm')\n"
            "app = labkit.App(model=lm, data=data)\napp",
        ],
    )
    return "lm.ipynb"


def _fill(page, label: str, value: str) -> None:
    """Type ``value`` into the visible App field whose row says ``label``."""
    row = page.locator(f"{APP} .widget-inline-hbox >> visible=true").filter(has_text=label)
    row.locator("input, textarea").first.fill(value)
    row.locator("input, textarea").first.press("Tab")  # ipywidgets sends the value on change


def test_the_lm_app_streams_a_generation_stops_it_and_fits(chromium, tmp_path: pathlib.Path):
    """A causal LM's App in JupyterLab: its seven tabs; Generate streams tokens into the view
    (the text grows), the tab's Stop stops it at once; a hostile prompt shows as text; a LoRA
    run's panel shows the sample prompts' answers at each evaluation; nothing is cut off at
    1280 px and 700 px on any tab. Screenshots: artifacts/app_lm_*.png."""
    from tests._jupyter import app_missing, jupyter_server

    if app_missing("lab"):
        pytest.fail(f"JupyterLab is missing (make install-dev installs it): {app_missing('lab')}")
    path = _lm_notebook(tmp_path)
    with (
        jupyter_server(tmp_path, app="lab", env=_env()) as server,
        _opened(chromium, server, path, "app_lm", width=1280) as page,
    ):
        assert "tiny-lm" in _status_ok(page, "^Ready")
        assert page.locator(f"{APP} .lm-TabBar-tab").all_inner_texts() == LM_TABS
        _tab(page, "Generate")
        _fill(page, "Max new tokens", "100")
        _button(page, "Generate").click()
        text = f"{APP} .labkit-gen-text"
        page.wait_for_function(
            "(s) => Number(document.querySelector(s)?.dataset.length) > 0", arg=text
        )
        first = int(page.get_attribute(text, "data-length") or 0)
        page.wait_for_function(
            "([s, n]) => Number(document.querySelector(s).dataset.length) > n", arg=[text, first]
        )
        assert page.get_attribute(f"{APP} .labkit-gen", "data-status") == "running"
        _button(page, "Stop").click()
        page.wait_for_selector(f"{APP} .labkit-gen[data-status='stopped']", timeout=10_000)
        said = _status_ok(page, "^Generation stopped after")
        assert int(re.search(r"after (\d+) tokens", said).group(1)) < 100, said
        _shot(page, "app_lm_generate")

        # a hostile prompt is shown literally and never runs
        page.locator(f"{APP} textarea >> visible=true").first.fill(HOSTILE)
        _fill(page, "Max new tokens", "3")
        _button(page, "Generate").click()
        page.wait_for_function(
            "(p) => document.querySelector('.labkit-app .labkit-gen-prompt')?.textContent === p",
            arg=HOSTILE,
        )
        _status_ok(page, "^Generated")
        assert page.locator(f"{APP} img").count() == 0
        assert page.evaluate("() => window.__pwned") is None

        # Train: a short LoRA run whose panel shows the sample generations at each evaluation
        _tab(page, "Train")
        _fill(page, "Max steps", "4")
        _fill(page, "Evaluate every", "2")
        _button(page, "Start training").click()
        page.wait_for_selector(f"{APP} .labkit-panel .labkit-samples[data-samples='2']")
        _status_ok(page, "^Training finished: 4 steps")
        # the panel answers the prompts of the Train tab's field (the first validation prompts)
        field = page.locator(f"{APP} textarea >> visible=true").last.input_value()
        prompts = page.locator(f"{APP} .labkit-sample-prompt").all_inner_texts()
        assert prompts == field.split("\n\n") and prompts[0].startswith("Review:"), prompts
        _shot(page, "app_lm_train")

        # Explain: the prompt coloured by the answer's tokens (the view counts for the fit too)
        _tab(page, "Explain")
        _button(page, "Explain").click()
        _status_ok(page, "^Explained")
        page.wait_for_selector(f"{APP} .labkit-gattr .labkit-gattr-prompt", timeout=30_000)

        found: dict[str, list[str]] = {}
        for width, sidebar in ((1280, True), (700, False)):
            _relaid(page, width, sidebar)
            for tab in LM_TABS:
                _tab(page, tab)
                _shot(page, f"app_lm_fit_{width}_{tab.lower()}")
                cut = page.evaluate(_CUT_OFF)
                if cut:
                    found[f"{width}px, {tab}"] = cut
        assert not found, "\n".join(f"{where}: {cut}" for where, cut in found.items())
        assert not _own_errors(page), page.page_errors
