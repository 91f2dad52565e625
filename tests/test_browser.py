"""Drive the web app in headless Chromium: example question → bold short answer, cited card, [1] link."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_app import start_app

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, built_index, embedder):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser test")
    demo, url, _, _ = start_app(tmp_path_factory.mktemp("browser-app"), built_index, embedder)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(app_url)
        yield pg
        browser.close()


def test_example_question_shows_answer_sources_and_citation_link(page):
    from playwright.sync_api import expect

    page.get_by_text("2025年太原新增养老床位多少张？", exact=True).first.click()
    chat = page.locator("#wenda-chat")
    expect(chat.locator("strong", has_text="2000张").first).to_be_visible()
    card = page.locator("#src-1")
    expect(card).to_be_visible()
    expect(page.locator("#wenda-sources mark").first).to_contain_text("2000张")
    expect(card).to_contain_text("2025年太原市政府工作报告要点")

    link = chat.locator('a[href="#src-1"]').last
    expect(link).to_be_visible()
    link.click()
    expect(card).to_have_class("wenda-card wenda-active")
    assert page.evaluate("document.getElementById('src-1').open") is True

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(600)  # smooth scroll and highlight transition
    page.screenshot(path=str(ARTIFACTS / "chat.png"))


def test_summary_question_cites_several_passages(page):
    from playwright.sync_api import expect

    page.get_by_text("如何打造一流创新生态？", exact=True).first.click()
    card = page.locator("#src-2")
    expect(card).to_be_visible()
    expect(page.locator("#wenda-chat li").first).to_be_visible()  # summary sentences as a list
    page.locator('#wenda-chat a[href="#src-2"]').last.click()
    expect(card).to_have_class("wenda-card wenda-active")
    page.wait_for_timeout(600)
    page.screenshot(path=str(ARTIFACTS / "summary.png"))


def test_typed_follow_up_shows_rewritten_query(page):
    from playwright.sync_api import expect

    box = page.locator("#wenda-question textarea")
    chat = page.locator("#wenda-chat")
    box.fill("“十三五”时期太原地区生产总值年均增长多少？")
    box.press("Enter")
    expect(chat.locator("strong", has_text="6.6%").first).to_be_visible()
    expect(box).to_have_value("")
    box.fill("2025年太原新增养老床位多少张？")
    box.press("Enter")
    expect(chat.locator("strong", has_text="2000张")).to_have_count(2)
    box.fill("那2022年呢？")
    box.press("Enter")
    expect(chat).to_contain_text("理解为：2022年太原新增养老床位多少张？")
    expect(page.locator("#wenda-sources .wenda-card").first).to_be_visible()


def test_empty_question_shows_friendly_error(page):
    from playwright.sync_api import expect

    box = page.locator("#wenda-question textarea")
    box.fill("   ")
    page.locator("#wenda-send").click()
    expect(page.get_by_text("请输入问题，例如").first).to_be_visible()
    assert "Traceback" not in page.content()
