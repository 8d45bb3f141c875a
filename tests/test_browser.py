"""The inspector in a real browser: JupyterLab on localhost, headless Chromium driven by Selenium.

The test opens a copy of notebooks/07_inspector.ipynb in the Lab UI, runs every cell from Lab's
Run menu (the quick profile: PYRAMID_PROFILE=quick, runs under a temporary PYRAMID_WORK), waits for
the inspector's widgets, checks that they rendered (no "Loading widget...", no "Error displaying
widget", its figures are loaded images), then moves the threshold with the slider's keyboard
keys and with the Youden button and checks that the TPR/TNR text the browser shows follows.
Screenshots go to build/browser/*.png.  It only drives the UI and reads the rendered text.

Needs `chromium` and `chromedriver` on PATH (Debian: apt-get install chromium chromium-driver)
and `selenium` (extra `dev`); `.ci/run` installs them.  Without them the test is skipped, except
in CI (env CI or PYRAMID_REQUIRE_BROWSER set), where it fails instead.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07_inspector.ipynb"
SHOTS = REPO / "build" / "browser"
SERVER_START_S = 90
RUN_ALL_S = 420  # the notebook trains a quick run first: ~30 s alone, more on 2 busy cores
WIDGET_S = 60

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _missing_tools() -> list[str]:
    missing = [] if shutil.which("chromedriver") else ["chromedriver (apt-get install chromium-driver)"]
    if not _chromium():
        missing.append("chromium (apt-get install chromium)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    return missing


def _chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.fixture(scope="module")
def tools():
    missing = _missing_tools()
    if missing:
        why = "browser test needs " + ", ".join(missing)
        if os.environ.get("CI") or os.environ.get("PYRAMID_REQUIRE_BROWSER"):
            pytest.fail(f"{why}; in CI (.ci/run installs them) this test must run, not skip")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """Lab user settings: every cell kept in the DOM (no windowing), no news or update toasts."""
    (folder / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (folder / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        '{"windowingMode": "none"}')
    (folder / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')


@pytest.fixture(scope="module")
def lab(tools, tmp_path_factory):
    """A JupyterLab server on a free localhost port, serving a temporary folder that holds a copy
    of the inspector notebook (Lab's autosave never touches the repository's file); yields
    (base url, token, log path); shut down, kernels included, however the test ends."""
    root = tmp_path_factory.mktemp("lab")
    work = root / "notebooks"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    _write_settings(root / "settings")
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, "PYRAMID_PROFILE": "quick", "PYRAMID_WORK": str(root / "runs"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(root / "config"),
           "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "IPYTHONDIR": str(root / "ipython")}
    if os.environ.get("PYRAMID_DATA"):
        env["PYRAMID_DATA"] = os.environ["PYRAMID_DATA"]
    log = root / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work}", "--ServerApp.terminals_enabled=False",
           f"--LabServerApp.user_settings_dir={root / 'settings'}",
           f"--LabServerApp.workspaces_dir={root / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer on {url} within {SERVER_START_S}s:\n{_tail(log)}")
            time.sleep(0.5)
        yield url, token, log
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the server and its kernels), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            os.killpg(proc.pid, 0)  # a kernel left behind in the group?
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


@pytest.fixture(scope="module")
def browser(tools, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = _chromium()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1600", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


# ------------------------------------------------------------------------------------ helpers
def _wait(driver, what: str, timeout: float, condition, log: Path | None = None):
    """Poll `condition()` until it returns something truthy; fail saying `what` (and showing the
    Lab log and a screenshot) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            _shot(driver, "failure")
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; screenshot "
                        f"{SHOTS / 'failure.png'}\n{_tail(log) if log else ''}")
        time.sleep(0.5)


def _shot(driver, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _notebook_text(driver) -> str:
    return driver.execute_script(
        "const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');"
        "return nb ? nb.textContent : '';")


def _prompts(driver) -> list[str]:
    """The execution prompts ('[ ]:', '[*]:', '[3]:') of the notebook's code cells."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))"
        ".map(e => e.textContent.trim());")


def _rates_element(driver):
    """The inspector's rendered line that reports TPR and TNR (an ipywidgets HTML widget): the one
    with CSS class `pyramid-rates` (the inspector's hook), else any HTML widget naming both."""
    from selenium.webdriver.common.by import By

    hooked = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .pyramid-rates .widget-html-content")
    for el in hooked or driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-html-content"):
        text = el.get_attribute("textContent")
        if "TPR" in text and "TNR" in text:
            return el
    return None


def _rates(driver) -> str:
    el = _rates_element(driver)
    return " ".join(el.get_attribute("textContent").split()) if el else ""


def _kernel_idle(driver) -> bool:
    """The status bar says Idle, or (where an extension rearranges the status bar, as nbgrader's does)
    the server says every kernel of this page is idle."""
    bar = driver.execute_script(
        "return Array.from(document.querySelectorAll('.jp-StatusBar-TextItem')).map(e => e.textContent).join(' ');")
    if "Idle" in bar:
        return True
    states = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/kernels').then(r => r.json()).then(ks => done(ks.map(k => k.execution_state)))"
        ".catch(() => done([]));")
    return bool(states) and all(s == "idle" for s in states)


def _new_rates(driver, old: str | None, what: str, log: Path) -> str:
    """The TPR/TNR text once it differs from `old` (None: any), the kernel is idle again and the text has
    stayed the same for a second (one user action can update it more than once)."""
    seen = []

    def settled():
        seen.append(_rates(driver) if _kernel_idle(driver) else None)
        last = seen[-3:]
        return len(last) == 3 and last[0] and last[0] != old and last.count(last[0]) == 3 and last[0]
    return _wait(driver, what, WIDGET_S, settled, log)


def _tpr_tnr(text: str) -> tuple[str, str]:
    got = re.search(r"TPR\D*?([\d.]+).*?TNR\D*?([\d.]+)", text)
    assert got, f"no TPR/TNR numbers in the inspector's text: {text!r}"
    return got.group(1), got.group(2)


def _run_all(driver, log) -> str:
    """Lab's Run > Run All Cells menu item; returns how it was invoked."""
    from selenium.webdriver.common.by import By

    def menu_item(css, label):
        for el in driver.find_elements(By.CSS_SELECTOR, css):
            if el.text.strip() == label and el.is_displayed():
                return el
        return None

    _wait(driver, "Lab's Run menu", 30, lambda: menu_item(".lm-MenuBar-itemLabel", "Run"), log).click()
    _wait(driver, "the menu item 'Run All Cells'", 10,
          lambda: menu_item(".lm-Menu-itemLabel", "Run All Cells"), log).click()
    return "Run > Run All Cells"


# ------------------------------------------------------------------------------------ the test
def test_inspector_in_jupyterlab(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, token, log = lab
    driver = browser
    for old in SHOTS.glob("*.png"):
        old.unlink()
    t0 = time.monotonic()
    driver.get(f"{url}/lab/tree/{NOTEBOOK.name}?reset&token={token}")
    _wait(driver, "the notebook to open in Lab", 90,
          lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell"), log)
    _wait(driver, "the kernel to start (status 'Idle')", 90, lambda: _kernel_idle(driver), log)
    n_code = len(_prompts(driver))
    assert n_code >= 2, f"the notebook shows {n_code} code cells"

    _run_all(driver, log)

    def finished():
        text = _notebook_text(driver)
        if "Traceback (most recent call last)" in text:
            _shot(driver, "failure")
            pytest.fail(f"a cell raised (screenshot {SHOTS / 'failure.png'}):\n"
                        f"{text[text.index('Traceback'):][:3000]}")
        p = _prompts(driver)
        return p and all(re.fullmatch(r"\[\d+\]:", x) for x in p)
    _wait(driver, "every code cell to run (Run All Cells)", RUN_ALL_S, finished, log)
    ran_s = time.monotonic() - t0

    # the widgets rendered: the rates line, the slider, the figures as loaded images
    rates_el = _wait(driver, "the inspector's TPR/TNR text", WIDGET_S, lambda: _rates_element(driver), log)
    driver.execute_script("arguments[0].closest('.jp-OutputArea').scrollIntoView();", rates_el)
    images = _wait(driver, "the inspector's figures to load", WIDGET_S, lambda: [
        img for img in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-image")
        if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", img)], log)
    text = _notebook_text(driver)
    for bad in ("Loading widget", "Error displaying widget", "Failed to load model"):
        assert bad not in text, f"the page shows {bad!r}: the widgets did not render"
    assert len(images) >= 3, f"{len(images)} of the inspector's 3 figures loaded"
    before = _new_rates(driver, None, "the TPR/TNR text to settle", log)
    tpr0, tnr0 = _tpr_tnr(before)
    _shot(driver, "1-after-run-all")

    # move the threshold: focus the slider's handle, Home (its minimum: everything flagged)
    handles = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-hslider .noUi-handle")
    assert handles, "the threshold slider (an ipywidgets FloatSlider) did not render"
    driver.execute_script("arguments[0].focus();", handles[0])  # a click would move it too
    handles[0].send_keys(Keys.HOME)
    at_min = _new_rates(driver, before, "the TPR/TNR text to change after Home on the slider", log)
    tpr1, tnr1 = _tpr_tnr(at_min)
    _shot(driver, "2-threshold-at-minimum")
    assert (tpr1, tnr1) != (tpr0, tnr0), f"TPR/TNR did not change with the threshold: {before!r} -> {at_min!r}"
    assert float(tpr1) == 1.0, f"at the lowest threshold every anomaly is flagged, the page says {at_min!r}"

    # and back with the Youden button
    buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output button.widget-button")
               if "youden" in b.text.lower()]
    assert buttons, "no Youden button in the inspector"
    buttons[0].click()
    back = _new_rates(driver, at_min, "the TPR/TNR text to change after the Youden button", log)
    _shot(driver, "3-youden-button")
    assert _tpr_tnr(back) != (tpr1, tnr1), f"the Youden button did not move TPR/TNR: {at_min!r} -> {back!r}"
    print(f"\nbrowser: {n_code} cells ran in {ran_s:.0f}s; TPR/TNR {tpr0}/{tnr0} -> (Home) {tpr1}/{tnr1} "
          f"-> (Youden) {'/'.join(_tpr_tnr(back))}; screenshots in {SHOTS}")
