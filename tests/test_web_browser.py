"""The page in a real headless Chromium: upload a clip, see the prompts, rate one, find the rating in
DuckDB. Needs Debian's `chromium` and `chromium-driver` (`make test` installs them when it can);
without them this test fails and says how to install them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from v2p.data.bad_records import BadRecords
from v2p.data.shard import open_shard

INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail(f"the browser test needs Chromium and its driver; install them with: {INSTALL}")
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(port: int, proc: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.5)


def test_upload_see_prompts_and_rate_in_a_real_browser(tiny_clip_index, small_shard, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_path = _browser_paths()
    ref, data = next(iter(open_shard(small_shard).video_payloads(BadRecords())))
    clip = tmp_path / ref.member
    clip.write_bytes(data)
    port, feedback = _free_port(), tmp_path / "ratings.duckdb"
    server = subprocess.Popen([sys.executable, "-m", "v2p.cli", "serve", "--index", str(tiny_clip_index), "--port",
                               str(port), "--feedback", str(feedback)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1400"):
        options.add_argument(arg)
    browser = None
    try:
        _wait_up(port, server)
        browser = webdriver.Chrome(service=Service(driver_path), options=options)
        browser.get(f"http://127.0.0.1:{port}/")
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
        browser.save_screenshot(str(tmp_path / "page.png"))
        shot = os.environ.get("V2P_SCREENSHOT")
        if shot:  # how the README's screenshot is made
            shutil.copy(tmp_path / "page.png", shot)
    finally:
        if browser is not None:
            browser.quit()
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    with duckdb.connect(str(feedback), read_only=True) as con:
        rows = con.execute("SELECT prompt, rating, rank FROM ratings").fetchall()
    assert rows == [(first_prompt, 1, 1)]
    assert Path(tmp_path / "page.png").stat().st_size > 10_000
