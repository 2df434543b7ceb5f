"""
Test helpers for the web front end: browsers as fakes on C{StringTransport}s
beside line clients, over one real core and fan-out; reading the WebSocket
frames the server writes; and a Chromium driven by Selenium.
"""

import json
import os
import shutil
from types import SimpleNamespace

import pytest

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransportWithDisconnection

from chatd.web.frames import unmask
from chatd.web.protocol import WebFactory
from support import MemoryClient, MemoryServer


def readFrames(data: bytes):
    """
    The server frames in C{data}, as (opcode, payload) pairs; server frames
    are never masked.
    """
    frames = []
    while data:
        opcode = data[0] & 0x0F
        assert data[0] & 0x80, "every frame is final"
        size = data[1]
        assert not size & 0x80, "a server frame is not masked"
        at = 2
        if size == 126:
            size, at = int.from_bytes(data[2:4], "big"), 4
        elif size == 127:
            size, at = int.from_bytes(data[2:10], "big"), 10
        frames.append((opcode, data[at:at + size]))
        assert len(data) >= at + size, "a frame is written whole"
        data = data[at + size:]
    return frames


def masked(payload, opcode=0x1, final=True, mask=b"\x1f\x80\x03\xfe", lengthBytes=None):
    """
    A client's frame of C{payload}, masked with C{mask}.
    """
    size = len(payload)
    first = (0x80 if final else 0) | opcode
    if lengthBytes == 2 or lengthBytes is None and 126 <= size < 0x10000:
        header = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    elif lengthBytes == 8 or lengthBytes is None and size >= 0x10000:
        header = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    else:
        header = bytes((first, 0x80 | size))
    return header + mask + unmask(payload, mask)


class FakeChannel:
    """
    What the web front end uses of the HTTP channel a WebSocket came on.
    """

    def __init__(self, transport):
        self.transport = transport
        self.timeout = "http"
        self.dataReceived = lambda data: None

    def setTimeout(self, timeout):
        self.timeout = timeout

    def uncount(self):
        # A fake channel was never counted (see chatd.web.resource._Channel).
        pass


class FakeRequest:
    def __init__(self, transport, address):
        self.channel = FakeChannel(transport)
        self._address = address

    def getClientAddress(self):
        return self._address


class Browser:
    """
    One browser's WebSocket, on a C{StringTransport}, after the handshake.
    """

    def __init__(self, factory, address):
        self.transport = StringTransportWithDisconnection(peerAddress=address)
        # As the HTTP channel leaves it: registered as the producer.
        self.transport.registerProducer(object(), True)
        self.request = FakeRequest(self.transport, address)
        self.proto = factory.buildProtocol(self.request)
        self.transport.protocol = self
        # The WebSocket library, which writes to the transport.
        self.proto.negotiationStarted(SimpleNamespace(transport=self.transport))
        self.proto.negotiationFinished()

    def connectionLost(self, reason):
        # StringTransportWithDisconnection tells its protocol.
        self.proto.connectionLost(reason)

    def send(self, **message):
        self.sendText(json.dumps(message))

    def sendText(self, text):
        self.proto.textMessageReceived(text)

    def frames(self):
        """
        The frames received since the last call.
        """
        data = self.transport.value()
        self.transport.clear()
        return readFrames(data)

    def messages(self):
        """
        The JSON messages received since the last call (other frames are
        left out).
        """
        return [json.loads(payload) for opcode, payload in self.frames() if opcode == 1]

    def login(self, nick):
        self.send(type="nick", nick=nick)
        got = self.messages()
        assert {"type": "you", "nick": nick, "old": None} in got, got
        return got


class WebMemoryServer(MemoryServer):
    """
    L{MemoryServer}'s core, gate and line factory, with a L{WebFactory}
    beside them.
    """

    def __init__(self, replay=20, **args):
        super().__init__(replay=replay, **args)
        self.web = WebFactory(self.core, self.gate, replay=replay)

    def browser(self, nick=None, host="127.0.0.1"):
        self._port += 1
        browser = Browser(self.web, IPv4Address("TCP", host, self._port))
        hello = browser.messages()
        assert hello and hello[0]["type"] == "hello", hello
        if nick is not None:
            browser.login(nick)
        return browser


def requireBrowser():
    """
    Skip when Chromium, its driver or Selenium is missing, unless CI demands
    every tool.
    """
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        if os.environ.get("CHATD_REQUIRE_TOOLS"):
            pytest.fail(f"{', '.join(missing)} required but not installed")
        pytest.skip(f"{', '.join(missing)} not installed")


__all__ = ["Browser", "MemoryClient", "WebMemoryServer", "masked", "readFrames",
           "requireBrowser"]


CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu",
    # Offline and quiet: nothing fetched in the background.
    "--disable-background-networking", "--disable-component-update",
    "--disable-default-apps", "--disable-sync", "--disable-extensions",
    "--no-first-run", "--no-default-browser-check", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--disable-dev-shm-usage",
]

WAIT = 15
"""Seconds any wait for the page may take before the test fails."""


def chromium(folder, width=1200, height=800, certificateErrors=False):
    """
    A headless Chromium driven through Debian's chromedriver, with its
    profile in C{folder}; with C{certificateErrors}, one that accepts any
    certificate (a test's self-signed one).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={folder}")
    if certificateErrors:
        options.add_argument("--ignore-certificate-errors")
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


class Page:
    """
    The web client in one browser, read and driven as a person would:
    through the elements they see.
    """

    def __init__(self, driver, url):
        self.driver = driver
        self.url = url
        driver.get(url)

    def wait(self, condition, what, timeout=WAIT):
        """
        Wait until C{condition()} is true; fail, saying C{what} was awaited
        and what the page shows, after C{timeout} seconds.
        """
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
                lambda d: condition())
        except TimeoutException:
            raise AssertionError(f"waited {timeout} s for {what}; the page shows "
                                 f"{self.logTexts()!r}") from None

    def find(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def findAll(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def login(self, nick):
        field = self.find("#login-nick")
        self.wait(lambda: field.is_displayed(), "the nickname prompt")
        field.clear()
        field.send_keys(nick + "\n")
        self.wait(lambda: self.find("#me").text == nick, f"being {nick}")

    def type(self, line):
        from selenium.webdriver.common.keys import Keys
        box = self.find("#say-input")
        box.send_keys(line)
        box.send_keys(Keys.ENTER)
        self.wait(lambda: box.get_attribute("value") == "", "the line to be sent")

    def logTexts(self):
        """
        The lines shown in the conversation on screen, as their text.
        """
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#log li')].map(li => li.textContent)")

    def messages(self):
        """
        The messages shown in the conversation on screen, as (nick, text).
        """
        return [tuple(pair) for pair in self.driver.execute_script(
            "return [...document.querySelectorAll('#log li.message')].map(li => "
            "[li.querySelector('.nick').textContent, li.querySelector('.text').textContent])")]

    def waitForMessage(self, nick, text):
        self.wait(lambda: (nick, text) in self.messages(), f"<{nick}> {text}")

    def room(self):
        return self.find("#room-name").text

    def sidebar(self):
        """
        The sidebar's entries: (name, unread count or 0), rooms then private.
        """
        return [tuple(e) for e in self.driver.execute_script(
            "return [...document.querySelectorAll('.buffers button')].map(b => "
            "[b.querySelector('.name').textContent, "
            "Number((b.querySelector('.unread') || {}).textContent || 0)])")]

    def open(self, name):
        for button in self.findAll(".buffers button"):
            if button.find_element("css selector", ".name").text == name:
                button.click()
                self.wait(lambda: self.room() in (name, "@" + name), f"{name} shown")
                return
        raise AssertionError(f"no sidebar entry {name}: {self.sidebar()}")

    def members(self):
        # Read in one script: the page redraws the list once a frame, and
        # an element read meanwhile would be stale.
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#members li')].map(li => li.textContent)")
