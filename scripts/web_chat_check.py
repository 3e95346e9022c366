#!/usr/bin/env python3
"""Drives the web chat of `kujira serve` (GET /) in headless Chromium through chromedriver (see scripts/check-web-chat.sh).
--base is a server on the embedded reasoning model (it thinks, then answers), --slow-base one on SmolLM2, whose long
replies stream slowly enough to press Stop. Prints one PASS/FAIL line per check and 'web-chat: N passed, N failed'; exits 1 on failure."""
import argparse
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from checks import check, finish
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

parser = argparse.ArgumentParser()
parser.add_argument("--base", required=True)
parser.add_argument("--slow-base", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--screenshot", required=True)
args = parser.parse_args()

options = Options()
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
    options.add_argument(flag)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
def wait(condition, seconds=120):
    # Streaming replaces the reply's element on every chunk, so a reference can go stale between two looks.
    return WebDriverWait(driver, seconds, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition())


def reply_text(selector, index=-1):
    """Text of `selector` in assistant reply `index`, read afresh."""
    return wait(lambda: assistants()[index].find_element(By.CSS_SELECTOR, selector).text, 10)


def assistants():
    return driver.find_elements(By.CSS_SELECTOR, "#messages .message.assistant")


def set_key(base):
    driver.get(base + "/")
    driver.find_element(By.CSS_SELECTOR, "aside details summary").click()
    field = driver.find_element(By.ID, "api-key")
    field.clear()
    field.send_keys(args.key)
    driver.execute_script("document.getElementById('api-key').dispatchEvent(new Event('change'))")
    driver.get(base + "/")  # the key is kept in localStorage; the page now lists the model


def send(text):
    prompt = driver.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys(text)
    driver.find_element(By.ID, "send").click()


@check("page loads from the binary, asks no key, names the model once the key is set")
def _():
    driver.get(args.base + "/")
    assert driver.title == "Kujira chat", driver.title
    set_key(args.base)
    wait(lambda: driver.find_element(By.ID, "model-name").text not in ("…", "", "(set the API key in Settings)"), 30)
    assert "kujira" in driver.find_element(By.ID, "model-name").text.lower() or driver.find_element(By.ID, "model-name").text


@check("a message streams back: thinking block, answer, tokens/s")
def _():
    send("What is 2+3?")
    wait(lambda: len(assistants()) == 1 and assistants()[0].get_attribute("data-state") == "done")
    assert assistants()[0].find_elements(By.CSS_SELECTOR, ".thinking"), assistants()[0].get_attribute("innerHTML")
    assistants()[0].find_element(By.CSS_SELECTOR, ".thinking summary").click()  # open it for the screenshot
    body = reply_text(".thinking .body")
    assert body.strip(), "empty thinking"
    answer = reply_text(".content")
    assert "5" in answer, answer
    stats = reply_text(".stats")
    assert "tokens/s" in stats, stats
    driver.save_screenshot(args.screenshot)
    print(f"screenshot: {args.screenshot}; thinking {len(body)} chars; answer {answer!r}; {stats}")


@check("the conversation survives a reload (localStorage)")
def _():
    driver.get(args.base + "/")
    wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#conversations li")) == 1, 10)
    assert "What is 2+3?" in driver.find_element(By.CSS_SELECTOR, "#conversations li").text
    messages = driver.find_elements(By.CSS_SELECTOR, "#messages .message")
    assert [m.get_attribute("class").split()[-1] for m in messages] == ["user", "assistant"], [m.get_attribute("class") for m in messages]


@check("regenerate replaces the last answer")
def _():
    old = assistants()[0]
    driver.find_element(By.ID, "regenerate").click()
    WebDriverWait(driver, 30).until(staleness_of(old))
    wait(lambda: len(assistants()) == 1 and assistants()[0].get_attribute("data-state") == "done")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#messages .message")) == 2
    assert "5" in reply_text(".content")


@check("Markdown: code blocks, inline code, lists; HTML is escaped")
def _():
    html = driver.execute_script("return markdown(arguments[0])", "Use `x`:\n\n```swift\nlet a = 1 < 2\n```\n\n- **one**\n- two\n\n<script>alert(1)</script>")
    assert '<pre><code class="language-swift">let a = 1 &lt; 2</code></pre>' in html, html
    assert "<code>x</code>" in html and "<ul><li><strong>one</strong></li><li>two</li></ul>" in html, html
    assert "<script>" not in html and "&lt;script&gt;" in html, html


@check("Stop ends a long reply early")
def _():
    set_key(args.slow_base)
    driver.find_element(By.ID, "new-chat").click()
    # Greedy, and a prompt SmolLM2 answers at length (1500 tokens, measured), so the reply is still streaming when
    # Stop is pressed (a sampled "long story" was sometimes a few sentences, done before the first look).
    driver.execute_script("document.getElementById('max-tokens').value = '1500'; document.getElementById('temperature').value = '0'")
    send("List one hundred animals, one per line.")
    wait(lambda: assistants() and assistants()[-1].get_attribute("data-state") == "streaming"
         and assistants()[-1].find_element(By.CSS_SELECTOR, ".content").text, 30)
    driver.find_element(By.ID, "stop").click()
    wait(lambda: assistants()[-1].get_attribute("data-state") == "done", 30)
    stats = reply_text(".stats")
    assert "stopped" in stats, stats
    assert not driver.find_element(By.ID, "stop").is_displayed()


driver.quit()
finish("web-chat")
