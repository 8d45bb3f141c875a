"""`make html` pages need no network: formulas are typeset by the MathJax copied beside the pages
(from the jupyter-server-mathjax package), nothing is loaded from another host, and the links to
the glossary point at its rendered page.  The browser test loads a page in headless Chromium with
every http(s) request blocked and checks that MathJax typeset its formulas and that the page asked
for nothing remote (skipped without chromium, chromedriver and selenium)."""

import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from tests.test_notebook_sentences import execute

pytest.importorskip("nbconvert")
pytest.importorskip("jupyter_server_mathjax")

REPO = Path(__file__).resolve().parents[1]
FORMULA = r"the score with $\lambda = 0$ is $\frac{1}{HW}\lVert x - \hat{x} \rVert^2$"
# every attribute or CSS rule through which a page makes the browser fetch something
FETCHES = re.compile(r"""(?:<(?:script|img|iframe|source|embed)\b[^>]*\bsrc|<link\b[^>]*\bhref)"""
                     r"""\s*=\s*["']([^"']+)["']|@import\s+(?:url\()?["']?([^"')\s]+)"""
                     r"""|url\(\s*["']?([^"')\s]+)""", re.IGNORECASE)


def remote_fetches(page: str) -> list[str]:
    """The URLs a page's tags and style rules would fetch from another host (http, https, //host)."""
    urls = [next(u for u in m.groups() if u) for m in FETCHES.finditer(page)]
    return [u for u in urls if re.match(r"(?:https?:)?//", u)]


def test_the_scan_finds_a_remote_script():
    assert remote_fetches('<script src="https://cdn.example/x.js"></script><link rel=x href="//h/y.css">') == \
        ["https://cdn.example/x.js", "//h/y.css"]
    assert remote_fetches('<a href="https://papermill.readthedocs.io">a link</a><script src="_mathjax/M.js">') == []


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("executed")
    html_dir = out.parent / "html"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# A page\n\n{FORMULA}; see [SSIM](GLOSSARY.md#ssim)."),
        nbformat.v4.new_code_cell("print(1)", execution_count=1,
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])])
    nbformat.write(nb, out / "00_tour.ipynb")
    assert execute.html(out, html_dir, [Path("notebooks/00_tour.ipynb")]) == 0
    return html_dir


def test_pages_fetch_nothing_from_another_host_and_carry_their_mathjax(pages):
    page = (pages / "00_tour.html").read_text(encoding="utf-8")
    assert remote_fetches(page) == []
    assert f'src="{execute.MATHJAX_DIR}/MathJax.js?config=' in page
    assert (pages / execute.MATHJAX_DIR / "MathJax.js").is_file()
    assert 'href="GLOSSARY.html#ssim"' in page and 'GLOSSARY.md' not in page
    glossary = (pages / "GLOSSARY.html").read_text(encoding="utf-8")
    assert remote_fetches(glossary) == [] and 'id="youdens-j"' in glossary


def test_the_mathjax_copy_is_made_once_per_version(pages):
    stamp = pages / execute.MATHJAX_DIR / "VERSION"
    before = stamp.stat().st_mtime_ns
    execute.local_mathjax(pages)
    assert stamp.stat().st_mtime_ns == before


@pytest.mark.slow
@pytest.mark.browser
def test_formulas_render_in_chromium_with_the_network_blocked(pages):
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if not (chromium and shutil.which("chromedriver")):
        pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,900", "--allow-file-access-from-files", f"--user-data-dir={pages / 'chromium'}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
        for name in ("00_tour.html", "GLOSSARY.html"):
            driver.get((pages / name).as_uri())
            done = "return !!(window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && " \
                   "document.querySelectorAll('.MathJax, .MathJax_Display').length)"
            for _ in range(120):
                if driver.execute_script(done):
                    break
                time.sleep(0.25)
            typeset = driver.execute_script("return document.querySelectorAll('.MathJax, .MathJax_Display').length")
            errors = driver.execute_script("return document.querySelectorAll('.MathJax_Error, merror').length")
            text = driver.execute_script("return document.body.innerText")
            assert typeset > 0 and errors == 0, f"{name}: MathJax typeset {typeset} formulas, {errors} errors"
            assert "\\frac" not in text and "\\lambda" not in text, f"{name}: raw LaTeX left on the page"
            shots = REPO / "build" / "browser"
            shots.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(shots / f"offline-{name}.png"))
        asked = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in asked if m["method"] == "Network.requestWillBeSent"]
        assert any(u.startswith("file:") and "MathJax.js" in u for u in urls), urls  # the log saw the page's loads
        assert [u for u in urls if re.match(r"(?:https?|wss?|ftp):", u)] == []  # and nothing remote among them
    finally:
        driver.quit()
