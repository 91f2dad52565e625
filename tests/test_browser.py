"""Drive the web app in headless Chromium: example question → bold short answer, cited card, [1] link;
an English browser gets the English interface; a rejected question leaves the conversation visible; a
reload keeps the conversation (and every answer's markers link to their sources); the Markdown export
holds the citations; a 👎 writes a feedback line; the viewer opens at the cited span; an uploaded PDF is
cited with its page.

Screenshots go to artifacts/browser/; with WENDA_SCREENSHOT_DIR set (e.g. docs/img) the interface
screenshots ui_zh.png and ui_en.png are written there too.
"""
from __future__ import annotations

import json
import os
import re
import shutil
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
def running_app(tmp_path_factory, built_index, embedder):
    """(url, workspace home) of the app under test."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does) to run the browser test")
    demo, url, corpus, _ = start_app(tmp_path_factory.mktemp("browser-app"), built_index, embedder)
    yield url, corpus.parents[2]  # home/kbs/<kb>/corpus
    demo.close()


@pytest.fixture(scope="module")
def app_url(running_app):
    return running_app[0]


@pytest.fixture(scope="module")
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, url: str, locale: str):
    """A new page of the app in a browser context of ``locale`` (its navigator.language and Accept-Language)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(url)
    return pg


@pytest.fixture(scope="module")
def page(browser, app_url):
    pg = open_page(browser, app_url, "zh-CN")
    yield pg
    pg.context.close()


def collection_title(field: str) -> str:
    """The bundled collection's ``title`` or ``title_en`` (its corpus manifest)."""
    from index.workspace import corpus_profile

    title = corpus_profile(ROOT / "data" / "corpus" / "taiyuan")[field]
    assert title
    return title


def screenshot(page, name: str) -> None:
    """Save a screenshot to artifacts/browser/ (and to WENDA_SCREENSHOT_DIR when set)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    target = os.environ.get("WENDA_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / name, Path(target) / name)


def test_example_question_shows_answer_sources_and_citation_link(page):
    from playwright.sync_api import expect

    page.get_by_text("2025年太原新增养老床位多少张？", exact=True).first.click()
    chat = page.locator("#wenda-chat")
    expect(chat.locator("strong", has_text="2000张").first).to_be_visible()
    card = page.locator("#src-1")
    expect(card).to_be_visible()
    expect(page.locator("#wenda-sources mark").first).to_contain_text("2000张")
    expect(card).to_contain_text("2025年太原市政府工作报告要点")
    expect(page.locator("#wenda-header")).to_contain_text(collection_title("title"))

    link = chat.locator('a[href="#src-1"]').last
    expect(link).to_be_visible()
    link.click()
    expect(card).to_have_class("wenda-card wenda-active")
    assert page.evaluate("document.getElementById('src-1').open") is True

    page.wait_for_timeout(600)  # smooth scroll and highlight transition
    screenshot(page, "ui_zh.png")


def test_viewer_opens_the_document_at_the_cited_span(page):
    from playwright.sync_api import expect

    card = page.locator("#src-1")
    if not card.is_visible():
        page.get_by_text("2025年太原新增养老床位多少张？", exact=True).first.click()
    expect(card).to_contain_text("2000张")
    card.locator("a.wenda-view").click()
    mark = page.locator("#wenda-doc-mark")
    expect(mark).to_contain_text("2000张")
    expect(mark).to_be_in_viewport()
    expect(page.locator("#wenda-viewer-text")).to_contain_text("2025年太原市政府工作报告")
    download = page.locator("#wenda-viewer-download")
    expect(download).to_be_visible()
    with page.expect_download() as info:
        download.click()
    assert info.value.suggested_filename.endswith(".txt")
    screenshot(page, "viewer.png")
    page.locator("#wenda-viewer-close").click()
    expect(page.locator("#wenda-viewer-text")).to_be_hidden()


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


def test_empty_question_leaves_the_conversation_visible(page):
    from playwright.sync_api import expect

    chat = page.locator("#wenda-chat")
    expect(chat.locator("strong", has_text="2000张").first).to_be_visible()
    before = chat.inner_text()
    box = page.locator("#wenda-question textarea")
    box.fill("   ")
    page.locator("#wenda-send").click()
    expect(page.get_by_text("请输入问题，例如").first).to_be_visible()  # a toast
    expect(page.locator(".toast-title").first).to_contain_text("注意")  # titled in the page's language
    page.wait_for_timeout(500)
    expect(chat.locator("strong", has_text="2000张").first).to_be_visible()
    assert chat.inner_text() == before
    expect(page.locator("#wenda-sources .wenda-card").first).to_be_visible()
    for panel in ("#wenda-chat", "#wenda-sources", "#wenda-question"):  # no error overlay on any panel
        expect(page.locator(panel).get_by_text("错误", exact=True)).to_have_count(0)
        expect(page.locator(panel).get_by_text("Error", exact=True)).to_have_count(0)
    assert "Traceback" not in page.content()


def test_reload_keeps_the_chat_and_every_answer_links_its_sources(page):
    from playwright.sync_api import expect

    chat = page.locator("#wenda-chat")
    expect(chat.locator("strong", has_text="2000张").first).to_be_visible()
    before = chat.locator(".message").count()
    page.reload()
    expect(chat.locator("strong", has_text="2000张")).to_have_count(2)
    expect(chat).to_contain_text("理解为：2022年太原新增养老床位多少张？")
    assert chat.locator(".message").count() == before
    expect(page.locator("#wenda-sources .wenda-card").first).to_be_visible()

    link = chat.locator('a[href="#src-1-1"]').first  # the first answer's [1], after four more answers
    link.scroll_into_view_if_needed()
    link.click()
    card = page.locator("#src-1-1")
    expect(card).to_be_visible()
    expect(card).to_have_class("wenda-card wenda-active")
    expect(card).to_contain_text("2025年太原市政府工作报告要点")
    assert page.locator("#wenda-sources .wenda-turn:not([hidden])").count() == 1


def test_export_holds_the_citations(page):
    from playwright.sync_api import expect

    button = page.locator("#wenda-export")
    expect(button).to_be_visible()
    with page.expect_download() as info:
        button.click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert info.value.suggested_filename.endswith(".md")
    assert "## 1. 2025年太原新增养老床位多少张？" in text and "**2000张**" in text
    assert "2025年太原市政府工作报告要点" in text and "   > " in text and "2000张" in text.split("   > ", 1)[1]


def test_dislike_writes_a_feedback_line(page, running_app):
    from playwright.sync_api import expect

    path = running_app[1] / "feedback.jsonl"
    chat = page.locator("#wenda-chat")
    chat.locator('button[aria-label="踩"]').first.click()
    expect(page.locator("#wenda-feedback textarea")).to_be_visible()
    page.locator("#wenda-feedback textarea").fill("数字不对")
    page.locator("#wenda-feedback-send").click()
    expect(page.locator("#wenda-feedback")).to_be_hidden()
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["vote"], r["comment"]) for r in records] == [("down", ""), ("down", "数字不对")]
    r = records[0]
    assert r["question"] == "2025年太原新增养老床位多少张？" and r["answer"]["short_answer"].startswith("2000张")
    assert r["citations"][0]["title"] == "2025年太原市政府工作报告要点" and r["model"]["sha256"] and r["index"]["built_at"]


def test_english_browser_gets_the_english_interface(browser, app_url):
    from playwright.sync_api import expect

    pg = open_page(browser, app_url, "en-US")
    try:
        expect(pg.locator("#wenda-send")).to_have_text("Send")
        expect(pg.get_by_role("tab", name="Knowledge base")).to_be_visible()
        expect(pg.get_by_text("Example questions (click to ask)").first).to_be_visible()
        expect(pg.locator("#wenda-sources")).to_contain_text("Ask a question")
        expect(pg.locator("#wenda-question textarea")).to_have_attribute("placeholder", "Type a question and press Enter (at most 500 characters)")
        assert "发送" not in pg.locator("body").inner_text()
        expect(pg.locator("#wenda-header")).to_contain_text(collection_title("title_en"))
        expect(pg.locator("#wenda-kb input")).to_have_value(re.compile(re.escape(collection_title("title_en"))))

        pg.get_by_text("How many new elderly-care beds will Taiyuan add in 2025?", exact=True).first.click()
        expect(pg.locator("#wenda-sources .wenda-card").first).to_be_visible()
        expect(pg.locator("#wenda-sources")).to_contain_text("score")
        pg.wait_for_timeout(600)
        screenshot(pg, "ui_en.png")

        box = pg.locator("#wenda-question textarea")
        box.fill("   ")
        pg.locator("#wenda-send").click()
        expect(pg.get_by_text("Please type a question, for example:").first).to_be_visible()
    finally:
        pg.context.close()


def test_first_answer_markers_show_its_own_sources_before_and_after_reload(browser, app_url):
    """Two questions, then the FIRST answer's [1]: the panel shows that answer's source, not the latest
    answer's; the same after a reload (the sources come back from the browser copy)."""
    from playwright.sync_api import expect

    pg = open_page(browser, app_url, "zh-CN")  # a fresh context: its own browser storage
    try:
        chat = pg.locator("#wenda-chat")
        box = pg.locator("#wenda-question textarea")
        box.fill("2025年太原新增养老床位多少张？")
        box.press("Enter")
        expect(chat.locator("strong", has_text="2000张").first).to_be_visible()
        box.fill("“十三五”时期太原地区生产总值年均增长多少？")
        box.press("Enter")
        expect(chat.locator("strong", has_text="6.6%").first).to_be_visible()
        expect(pg.locator("#src-1")).to_contain_text("6.6%")

        for attempt in ("before", "after reload"):
            if attempt == "after reload":
                pg.reload()
                expect(chat.locator("strong", has_text="6.6%").first).to_be_visible()
            chat.locator('a[href="#src-1-1"]').first.click()
            card = pg.locator("#src-1-1")
            expect(card).to_be_visible()
            expect(card).to_have_class("wenda-card wenda-active")
            expect(card.locator("mark").first).to_contain_text("2000张")
            expect(card).to_contain_text("2025年太原市政府工作报告要点")
            shown = pg.locator("#wenda-sources .wenda-turn:not([hidden])")
            expect(shown).to_have_count(1)
            expect(shown).to_have_attribute("data-turn", "1")
            expect(shown).to_contain_text("第 1 问的来源：2025年太原新增养老床位多少张？")
            expect(pg.locator("#src-1")).to_be_hidden()  # the latest answer's sources are hidden meanwhile

            chat.locator('a[href="#src-1"]').last.click()  # and the latest answer's marker brings them back
            expect(pg.locator("#src-1")).to_be_visible()
            expect(pg.locator("#src-1")).to_contain_text("6.6%")
            expect(card).to_be_hidden()
    finally:
        pg.context.close()


def test_pdf_answer_cites_its_page(browser, app_url, tmp_path_factory):
    """A PDF uploaded into the knowledge base is answered with a citation card naming its page (issue 14.3).
    Last in the module: it adds a document to the shared knowledge base."""
    import app
    from tests.test_pdf import REPORT, make_pdf

    path = tmp_path_factory.mktemp("pdf") / "riverside.pdf"
    path.write_bytes(make_pdf(REPORT))
    message = app.kb_upload([str(path)], None, "")[0]
    assert "riverside.pdf" in message and "✅" in message
    pg = open_page(browser, app_url, "en-US")
    try:
        box = pg.get_by_placeholder("Type a question", exact=False)
        box.fill("How many affordable homes did builders finish near the old harbour?")
        box.press("Enter")
        card = pg.locator(".wenda-card").filter(has_text="350 affordable homes").first
        card.wait_for()
        assert "p. 2" in card.inner_text()
        screenshot(pg, "pdf_page.png")
    finally:
        pg.context.close()
