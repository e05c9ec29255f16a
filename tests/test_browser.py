"""The casebook's HTML page in a real browser: headless Chromium, driven by Selenium.

Every image must load (``naturalWidth > 0``) and every in-page link must land on its
section (the target exists, and after the click it is in the viewport). Slow, and it
skips, saying why, where Selenium, Chromium or its driver is missing (CI has no
browser). Nothing is downloaded: the browser and driver are the system's
(Debian: ``apt-get install chromium chromium-driver``).
"""

import os
import shutil
from pathlib import Path

import pytest

from cases.report import write_report

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver",)
PAGE_LOAD_S = 30          # a local page with ~30 images loads in well under a second


def first_on_path(names) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, or a skip naming what is missing and how to install it."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    binary, driver = first_on_path(BROWSERS), first_on_path(DRIVERS)
    if not (binary and driver):
        missing = [what for what, found in (("no Chromium browser", binary),
                                             ("no chromedriver", driver)) if not found]
        pytest.skip(f"{' and '.join(missing)} on PATH (looked for {', '.join(BROWSERS)}; "
                    f"{', '.join(DRIVERS)}): on Debian, apt-get install chromium chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")   # never let Selenium Manager download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900", "--allow-file-access-from-files"):
        options.add_argument(arg)
    drv = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
    drv.set_page_load_timeout(PAGE_LOAD_S)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def tiny_casebook(tmp_path_factory):
    """A casebook of the three tiny cases of test_report (a curve, class regions, digits)."""
    from test_report import DIGITS, LINKED_SOURCE, SPIRAL, tiny_case
    out = tmp_path_factory.mktemp("casebook")
    cases = (tiny_case(), tiny_case("tiny-spiral", SPIRAL, 0.5, "train_acc", 0.0, LINKED_SOURCE),
             tiny_case("tiny-digits", DIGITS, 0.05, "train_acc", 0.0))
    write_report(cases, out, ("numpy",), (0,), command="test")
    return out / "index.html"


def built_casebook() -> Path:
    page = ROOT / "casebook" / "index.html"
    if not page.is_file():
        pytest.skip(f"{page} does not exist: write it with python -m cases report")
    return page


def open_page(browser, page: Path) -> None:
    browser.get(page.resolve().as_uri())


def broken_images(browser) -> list:
    return browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.getAttribute('src'));")


def in_page_links(browser) -> list:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
        ".map(a => a.getAttribute('href'));")


LANDS = """
const a = document.querySelector(`a[href="${arguments[0]}"]`);
window.scrollTo(0, 0);
a.click();
const target = document.getElementById(arguments[0].slice(1));
if (!target) return 'no element with that id';
const r = target.getBoundingClientRect();
if (location.hash !== arguments[0]) return `location is ${location.hash}`;
return (r.top >= -1 && r.top < window.innerHeight) ? '' : `scrolled to top ${r.top}`;
"""


def links_that_miss(browser) -> dict:
    """{href: why} for every in-page link whose click does not bring its target into view."""
    misses = {}
    for href in in_page_links(browser):
        why = browser.execute_script(LANDS, href)
        if why:
            misses[href] = why
    return misses


@pytest.mark.parametrize("which", ["tiny", "built"])
def test_every_image_loads_and_every_link_lands(browser, tiny_casebook, which):
    page = tiny_casebook if which == "tiny" else built_casebook()
    open_page(browser, page)
    assert browser.execute_script("return document.images.length") > 0
    assert broken_images(browser) == []
    assert in_page_links(browser), "the front table links each case's section"
    assert links_that_miss(browser) == {}


# ----------------------------------------------------------------- a user's own run
WINDOW = (1200, 900)        # the browser's window, as the options above open it


@pytest.fixture(scope="module", params=["healthy", "watched"])
def own_run_page(request, tmp_path_factory):
    """The page of a healthy fit (three panels, no finding) or of a watched run that blew up
    (three panels, three findings), from own_runs.py."""
    from own_runs import own_report
    page = tmp_path_factory.mktemp("own-run") / f"{request.param}.html"
    page.write_text(own_report(request.param).to_html(), encoding="utf-8")
    return page


def whole_page_screenshot(browser, path: Path) -> Path:
    """The page from top to bottom in one PNG (the window stretched to its height, then back)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WINDOW[0], height + 150)   # + the window's own frame
    browser.save_screenshot(str(path))
    browser.set_window_size(*WINDOW)
    return path


def test_the_page_of_one_run_shows_its_figure(browser, own_run_page):
    open_page(browser, own_run_page)
    assert browser.execute_script("return document.images.length") == 1
    assert broken_images(browser) == []
    shown = browser.execute_script("const i = document.images[0]; "
                                   "return [i.naturalWidth, i.getBoundingClientRect().width];")
    assert shown[0] > 0 and 0 < shown[1] <= WINDOW[0]
    shot = whole_page_screenshot(browser, own_run_page.with_suffix(".png"))
    assert shot.stat().st_size > 0
