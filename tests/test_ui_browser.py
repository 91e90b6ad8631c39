"""The /ui review page in a real browser: Debian's headless Chromium, driven by Selenium, against a
real ``plus serve`` subprocess on 127.0.0.1 with a real SQLite store and the tiny random model.

Model refreshes are recorded the way ``summarize_with_store`` records them (``store.put`` of a
model-authored summary) by this test process, on the same SQLite file the server uses.
Screenshots go to a temp folder, or to ``$PLUS_UI_SCREENSHOTS`` (``docs/ui`` to refresh the docs).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plus_sdk.server.spawn import spawned_server
from plus_sdk.store import SummaryStore
from plus_sdk.types import Summary

TOKEN = "ui-test-token"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
UI_DIR = Path(__file__).resolve().parents[1] / "plus_sdk" / "server" / "ui"


def why_no_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[ui-test]' (make install-test does it)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is missing: apt-get install chromium chromium-driver (make install-test does it as root)"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_no_browser() is not None, reason=why_no_browser() or "")]


def model_summary(text: str, source_hash: str) -> Summary:
    return Summary(text=text, model_id="tiny:generic", prompt_version="v3", source_hash=source_hash)


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``plus serve --store`` with a token, as a subprocess; yields (base URL, SQLite path)."""
    db = tmp_path_factory.mktemp("ui") / "summaries.sqlite3"
    flags = ["--model", str(tiny_model_dir), "--served-model-name", "tiny", "--store", str(db)]
    # importing torch on a loaded 2-core machine can take minutes
    with spawned_server(flags, env={"PLUS_SERVE_TOKEN": TOKEN}, start_timeout=600) as (url, _):
        yield url, db


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=900,1000", "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("PLUS_UI_SCREENSHOTS") or tmp_path_factory.mktemp("ui-shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(driver: Any, folder: Path, name: str) -> Path:
    """A full-page PNG, reduced to a 64-colour palette so it stays small in docs/."""
    from PIL import Image

    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(900, min(max(int(height) + 120, 600), 2600))
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    path = folder / f"{name}.png"
    image.quantize(colors=64).save(path, optimize=True)
    driver.set_window_size(900, 1000)
    return path


def wait_for(driver: Any, condition: Any, timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def text_of(driver: Any, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def visible(driver: Any, element_id: str) -> bool:
    return driver.find_element("id", element_id).is_displayed()


def open_signed_out(driver: Any, url: str) -> None:
    """Load the page and wait until it has settled; sign out when a session from an earlier test came back."""
    driver.get(f"{url}/ui/")
    wait_for(driver, lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true")
    if visible(driver, "app"):
        driver.find_element("id", "sign-out").click()
    assert visible(driver, "signin")


def sign_in(driver: Any, url: str, user: str, key: str = TOKEN) -> None:
    from selenium.webdriver.common.keys import Keys

    open_signed_out(driver, url)
    driver.find_element("id", "user-id").clear()
    driver.find_element("id", "user-id").send_keys(user)
    driver.find_element("id", "key").send_keys(key, Keys.ENTER)  # the keyboard submits the form
    wait_for(driver, lambda d: visible(d, "app") or visible(d, "alert"))


def notice(driver: Any) -> str:
    wait_for(driver, lambda d: visible(d, "notice") or visible(d, "alert"))
    assert not visible(driver, "alert"), text_of(driver, "alert")
    return text_of(driver, "notice")


def test_the_page_is_served_with_its_files_and_needs_nothing_from_elsewhere(served: tuple[str, Path]) -> None:
    url, _ = served
    page = httpx.get(f"{url}/ui", timeout=10, follow_redirects=True)
    assert page.status_code == 200 and "<title>Your summary" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "app.css"):
        assert httpx.get(f"{url}/ui/{name}", timeout=10).status_code == 200
    assert httpx.get(f"{url}/ui/info", timeout=10).json() == {"store": True, "auth": True}
    for file in UI_DIR.iterdir():
        assert "http://" not in file.read_text() and "https://" not in file.read_text(), file.name


def test_the_word_diff_marks_what_was_added_and_removed(served: tuple[str, Path], browser: Any) -> None:
    browser.get(f"{served[0]}/ui/")
    diff = "return PlusDiff.diff(arguments[0], arguments[1])"
    assert browser.execute_script(diff, "likes cats a lot", "likes dogs a lot") == [
        ["=", "likes "], ["-", "cats"], ["+", "dogs"], ["=", " a lot"]]
    assert browser.execute_script(diff, "a b c", "a c d") == [["=", "a "], ["-", "b "], ["=", "c"], ["+", " d"]]
    assert browser.execute_script(diff, "", "new") == [["+", "new"]]
    assert browser.execute_script(diff, "same", "same") == [["=", "same"]]


def test_a_wrong_key_is_refused_in_plain_words(served: tuple[str, Path], browser: Any, shots: Path) -> None:
    sign_in(browser, served[0], "alice", key="not-the-key")
    assert visible(browser, "alert") and not visible(browser, "app")
    assert text_of(browser, "alert") == "That key was not accepted. Check it and sign in again."
    screenshot(browser, shots, "wrong-key")


def test_signing_in_shows_the_summary_and_where_it_came_from(served: tuple[str, Path], browser: Any,
                                                             shots: Path) -> None:
    url, db = served
    with SummaryStore(db) as store:
        store.put("alice", model_summary("Prefers short answers with one example. Likes cats; dislikes jargon.",
                                         "ctx-1"))
    sign_in(browser, url, "alice")
    assert visible(browser, "app") and text_of(browser, "who-user") == "alice"
    assert text_of(browser, "current-text").startswith("Prefers short answers")
    origin = text_of(browser, "current-origin")
    for expected in ("Version\n1", "Model\ntiny:generic", "Prompt version\nv3", "Edited by you\nno", " UTC"):
        assert expected in origin
    assert not visible(browser, "proposal")
    assert browser.switch_to.active_element.get_attribute("id") == "current-title"  # focus moved to the content
    screenshot(browser, shots, "signed-in")


def test_an_edit_survives_a_model_refresh_that_shows_as_a_proposal(served: tuple[str, Path], browser: Any,
                                                                   shots: Path) -> None:
    url, db = served
    with SummaryStore(db) as store:
        store.put("bob", model_summary("Likes long, detailed answers about history.", "ctx-1"))
    sign_in(browser, url, "bob")
    box = browser.find_element("id", "edit-text")
    box.clear()
    box.send_keys("I like short answers about cooking.")
    browser.find_element("id", "save-edit").click()
    assert notice(browser) == "Saved as version 2. It is your current summary."
    with SummaryStore(db) as store:  # the model summarizes bob again: held back as a proposal
        assert store.put("bob", model_summary("Likes short answers about cooking and travel.", "ctx-2")).is_proposal
    browser.refresh()  # the session survives a reload
    wait_for(browser, lambda d: visible(d, "proposal"))
    assert text_of(browser, "current-text") == "I like short answers about cooking."
    assert "Edited by you\nyes" in text_of(browser, "current-origin")
    added = [e.text for e in browser.find_elements("css selector", "#proposal-diff ins")]
    assert any("travel" in a for a in added), added
    screenshot(browser, shots, "proposal")


def test_accepting_a_proposal_makes_it_current(served: tuple[str, Path], browser: Any, shots: Path) -> None:
    url, db = served
    with SummaryStore(db) as store:
        store.put("carol", model_summary("Enjoys jazz.", "ctx-1"))
        store.edit("carol", "Enjoys jazz and blues.")
        store.put("carol", model_summary("Enjoys jazz, blues and soul.", "ctx-2"))
    sign_in(browser, url, "carol")
    browser.find_element("id", "accept-proposal").click()
    assert notice(browser) == "Suggestion accepted: it is your current summary (version 4)."
    assert text_of(browser, "current-text") == "Enjoys jazz, blues and soul." and not visible(browser, "proposal")
    with SummaryStore(db) as store:
        current = store.current("carol")
        assert current is not None and (current.version, current.action, current.based_on) == (4, "accept", 3)
    screenshot(browser, shots, "accepted")


def test_reverting_to_an_old_version(served: tuple[str, Path], browser: Any, shots: Path) -> None:
    url, db = served
    with SummaryStore(db) as store:
        store.put("dave", model_summary("Reads science fiction.", "ctx-1"))
        store.put("dave", model_summary("Reads science fiction and poetry.", "ctx-2"))
        store.edit("dave", "Reads poetry, mostly.")
    sign_in(browser, url, "dave")
    assert len(browser.find_elements("css selector", "#history-list > li")) == 3
    browser.find_element("css selector", "#version-1 summary").click()
    browser.find_element("css selector", "#version-2 summary").click()
    assert "poetry" in browser.find_element("css selector", "#version-2 ins").text
    screenshot(browser, shots, "history")
    browser.find_element("css selector", "#version-1 button").click()
    assert notice(browser) == "Version 1 is current again (saved as version 4)."
    assert text_of(browser, "current-text") == "Reads science fiction."
    assert len(browser.find_elements("css selector", "#history-list > li")) == 4
    with SummaryStore(db) as store:
        assert [r.action for r in store.history("dave")] == ["put", "put", "edit", "revert"]


def test_delete_asks_first_then_forgets(served: tuple[str, Path], browser: Any, shots: Path) -> None:
    url, db = served
    with SummaryStore(db) as store:
        store.put("erin", model_summary("Erin's secret hobby is birdwatching.", "ctx-1"))
        store.edit("erin", "Birdwatching, at dawn.")
    sign_in(browser, url, "erin")
    browser.find_element("id", "delete-button").click()
    assert visible(browser, "delete-dialog")
    screenshot(browser, shots, "delete-confirm")
    browser.find_element("id", "delete-cancel").click()
    assert not visible(browser, "delete-dialog")
    with SummaryStore(db) as store:
        assert len(store.history("erin")) == 2  # cancelled: nothing deleted
    browser.find_element("id", "delete-button").click()
    browser.find_element("id", "delete-confirm").click()
    assert notice(browser) == "Deleted 2 version(s). Nothing about you is stored here now."
    assert visible(browser, "current-empty") and not visible(browser, "history")
    with SummaryStore(db) as store:
        assert store.history("erin") == [] and "erin" not in store.users()
    screenshot(browser, shots, "deleted")


def test_a_judgement_under_the_users_summary(served: tuple[str, Path], browser: Any, shots: Path) -> None:
    url, db = served
    with SummaryStore(db) as store:
        store.put("frank", model_summary("Likes cats; wants replies under twenty words.", "ctx-1"))
    sign_in(browser, url, "frank")
    request = {"prompt": "Tell me about a pet.", "a": "Cats purr when they are content.",
               "b": "Dogs have been bred for many jobs over thousands of years, from herding to guarding."}
    for field, value in request.items():
        browser.find_element("id", f"judge-{field}").send_keys(value)
    browser.find_element("id", "judge-button").click()
    wait_for(browser, lambda d: "fits you better" in text_of(d, "judge-result"), timeout=120)
    expected = httpx.post(f"{url}/v1/judge", json={"summary": "Likes cats; wants replies under twenty words.",
                                                   **request}, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=120).json()
    p_a = round(expected["probability"] * 100)
    verdict = "Neither reply fits you better" if p_a == 50 else f"Reply {expected['choice'].upper()} fits you better"
    assert text_of(browser, "judge-result") == (
        f"{verdict}: {p_a}% that you prefer A, {100 - p_a}% B "
        "(under version 1 of your summary).")
    screenshot(browser, shots, "judge")


def test_a_rejected_write_is_explained_not_dumped(served: tuple[str, Path], browser: Any) -> None:
    url, db = served
    with SummaryStore(db) as store:
        store.put("gina", model_summary("Short.", "ctx-1"))
    sign_in(browser, url, "gina")
    browser.execute_script("document.getElementById('edit-text').value = 'x'.repeat(9000)")
    browser.find_element("id", "save-edit").click()
    wait_for(browser, lambda d: visible(d, "alert"))
    message = text_of(browser, "alert")
    assert "9000 characters, more than the limit 8000" in message and "{" not in message
    browser.execute_script("document.getElementById('edit-text').value = '   '")
    browser.find_element("id", "save-edit").click()
    assert text_of(browser, "alert") == "The summary is empty: write a few words about yourself first."


def test_focus_is_visible_when_tabbing(served: tuple[str, Path], browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_signed_out(browser, served[0])
    open_signed_out(browser, served[0])  # a fresh load with no session: focus starts at the top
    reached = []
    for _ in range(4):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        reached.append(active.get_attribute("id") or active.tag_name)
        if active.get_attribute("id") == "signin-button":
            break
    assert reached[-3:] == ["user-id", "key", "signin-button"], reached
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


def test_screenshots_are_small(shots: Path) -> None:
    pngs = list(shots.glob("*.png"))
    if not pngs:
        pytest.skip("no screenshots were taken in this run")
    assert all(p.stat().st_size < 200_000 for p in pngs), {p.name: p.stat().st_size for p in pngs}
