"""The page in a real headless Chromium: upload a clip, see the prompts, rate one, find the rating in
DuckDB. Needs Debian's `chromium` and `chromium-driver` (`make test` installs them when it can);
without them this test fails and says how to install them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from v2p.data.bad_records import BadRecords
from v2p.data.shard import open_shard

from conftest import running_server

INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail(f"the browser test needs Chromium and its driver; install them with: {INSTALL}")
    return chromium, driver


def test_upload_see_prompts_and_rate_in_a_real_browser(tiny_clip_index, small_shard, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _browser_paths()
    ref, data = next(iter(open_shard(small_shard).video_payloads(BadRecords())))
    clip = tmp_path / ref.member
    clip.write_bytes(data)
    feedback = tmp_path / "ratings.duckdb"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1400"):
        options.add_argument(arg)
    with running_server(tiny_clip_index, feedback) as (url, _):
        browser = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            first_prompt = _upload_and_rate(browser, url, clip, tmp_path / "page.png")
        finally:
            browser.quit()
    with duckdb.connect(str(feedback), read_only=True) as con:
        rows = con.execute("SELECT prompt, rating, rank FROM ratings").fetchall()
    assert rows == [(first_prompt, 1, 1)]
    assert Path(tmp_path / "page.png").stat().st_size > 10_000


def _upload_and_rate(browser, url: str, clip: Path, screenshot: Path) -> str:
    """Drive the page: upload, check prompts and frames, rate the first good; its prompt text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: "prompts" in b.find_element(By.ID, "index-info").text)
    browser.find_element(By.ID, "file").send_keys(str(clip))
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#prompts .prompt")))
    prompts = browser.find_elements(By.CSS_SELECTOR, "#prompts .prompt .text")
    assert len(prompts) == 5 and all(p.text for p in prompts)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#frames img")) == 8
    first_prompt = prompts[0].text
    browser.find_element(By.CSS_SELECTOR, "#prompts .prompt .up").click()
    wait.until(lambda b: "on" in b.find_element(By.CSS_SELECTOR, "#prompts .prompt .up").get_attribute("class"))
    browser.save_screenshot(str(screenshot))
    shot = os.environ.get("V2P_SCREENSHOT")
    if shot:  # how a README screenshot can be made from this test
        shutil.copy(screenshot, shot)
    return first_prompt
