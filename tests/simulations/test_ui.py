"""The web view in a real headless Chromium: it draws the network and follows it live.

Debian's ``chromium`` and ``chromium-driver`` driven by Selenium (the ``test``
extra). Where they are not installed the test is skipped with a message,
except under CI=true, where ``make test`` installs them first and a missing
browser fails the test.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from p2p.simulations.adapters import types as adapters
from p2p.simulations.http import Client

from tests.simulations.test_http import _TestServer, _wait_conns_up

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOT_DIR = os.environ.get("P2PSIM_UI_SCREENSHOTS", "")  # set to keep the pictures


def _browser_or_skip():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        msg = "no browser for the web view test (missing %s): apt-get install chromium chromium-driver" % (
            ", ".join(missing))
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI=true: make test installs them)")
        pytest.skip(msg)


@pytest.fixture
def browser():
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    profile = tempfile.mkdtemp(prefix="p2psim-ui-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", "--user-data-dir=" + profile):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, cond, what, timeout=30.0):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    # the page is another process: Selenium looks again every 0.1 s until it shows
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: cond())
    except TimeoutException:
        pytest.fail("the page did not show %s within %.0fs (now: %r)" % (what, timeout, _drawn(driver)))


# The page redraws its SVG on every event, so elements are read and clicked inside one
# script run: a Selenium element handle could go stale between finding and using it.
def _js(driver, script, *args):
    return driver.execute_script(script, *args)


def _drawn(driver):
    return tuple(_js(driver, """return [document.querySelectorAll('#nodes g.node').length,
                                        document.querySelectorAll('#nodes g.node.up').length,
                                        document.querySelectorAll('#edges g.conn').length];"""))


def _attrs(driver, selector, attr):
    return _js(driver, "return Array.from(document.querySelectorAll(arguments[0]), e => e.getAttribute(arguments[1]));",
               selector, attr)


def _texts(driver, selector):
    return _js(driver, "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent);", selector)


def _click_node(driver, name):
    assert _js(driver, """const g = document.querySelector('#nodes g.node[data-name="' + arguments[0] + '"]');
                          if (!g) return false;
                          g.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true;""", name)


def _shot(driver, name):
    if SCREENSHOT_DIR:
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        driver.save_screenshot(os.path.join(SCREENSHOT_DIR, name))


def test_ui_draws_network_and_follows_it(browser):
    s = _TestServer()
    try:
        client = Client(s.url)
        names = ["node%02d" % i for i in range(4)]
        for name in names:
            conf = adapters.random_node_config()
            conf.name = name
            client.create_node(conf)
            client.start_node(name)
        for a, b in ((0, 1), (1, 2), (2, 3)):
            client.connect_node(names[a], names[b])
        _wait_conns_up(client, 3)

        browser.get(s.url + "/")  # a browser's Accept: text/html gets the page, not the JSON
        assert "p2psim" in browser.title
        _wait(browser, lambda: _drawn(browser) == (4, 4, 3) and _drawn(browser), "4 nodes up and 3 connections")
        from selenium.webdriver.common.by import By

        assert browser.find_element(By.ID, "node-count").text == "4"
        assert browser.find_element(By.ID, "conn-count").text == "3"
        drawn_names = set(_attrs(browser, "#nodes g.node", "data-name"))
        assert drawn_names == set(names)
        _shot(browser, "ui-4-nodes.png")

        client.disconnect_node(names[1], names[2])
        _wait(browser, lambda: _drawn(browser) == (4, 4, 2) and _drawn(browser), "a connection vanish")
        labels = set(_attrs(browser, "#edges g.conn", "data-conn"))
        ids = [client.get_node(n).id for n in names]
        assert all(ids[1] not in lab or ids[2] not in lab for lab in labels)

        # the page's own buttons: pick node03 then node00 and connect them
        for name in ("node03", "node00"):
            _click_node(browser, name)
        browser.find_element(By.ID, "btn-connect").click()
        _wait(browser, lambda: _drawn(browser) == (4, 4, 3) and _drawn(browser), "the connection made from the page")
        # its handshakes are message events: counted, and written on the new edge
        _wait(browser, lambda: int(browser.find_element(By.ID, "msg-count").text) >= 10, "message counts")
        edge_counts = _texts(browser, "#edges g.conn text")
        assert edge_counts and all(int(c) > 0 for c in edge_counts)
        _shot(browser, "ui-msgs.png")
        _click_node(browser, "node03")  # unselect
        browser.find_element(By.ID, "btn-node-stop").click()  # node00 is now the selected node
        _wait(browser, lambda: _drawn(browser)[1] == 3 and _drawn(browser), "a node stopped from the page")
        _shot(browser, "ui-after.png")
        assert browser.find_element(By.ID, "error").text == ""
        href = browser.find_element(By.ID, "snapshot-link").get_attribute("href")
        assert href.endswith("/snapshot")
    finally:
        s.close()
