"""OpenAI-compatible chat-completions client and the grounded prompt of the generated-answer mode.

Configuration comes from the environment:

* ``WENDA_LLM_URL`` — base URL of the API, e.g. ``http://127.0.0.1:8080/v1`` (required; unset
  means generation is off);
* ``WENDA_LLM_MODEL`` — model name sent with each request (default: the server's first model);
* ``WENDA_LLM_API_KEY`` — bearer token, when the server wants one.

The client speaks plain HTTP through ``httpx`` (no ``openai`` package), retries connection
errors, 429 and 5xx answers with exponential back-off, and raises :class:`LLMUnavailable` when the
server cannot be reached, so callers can fall back to the extractive answer.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import httpx

from index.chunking import passage_sentences
from index.textproc import has_cjk, normalize

log = logging.getLogger(__name__)

ENV_URL = "WENDA_LLM_URL"
ENV_MODEL = "WENDA_LLM_MODEL"
ENV_API_KEY = "WENDA_LLM_API_KEY"

# 2 CPU cores prefill ~80 tokens/s with a 1.5B Q4 model; Qwen's tokenizer spends ~0.7 token per
# Chinese character, so 3 passages × 180 characters + instructions ≈ 450 tokens ≈ 6 s of prefill.
DEFAULT_PASSAGES = 3
DEFAULT_PASSAGE_CHARS = 180
DEFAULT_MAX_TOKENS = 128

# Kept minimal on purpose: with a 1.5B model, an extra "say so when the passages lack the answer"
# rule made it refuse answerable questions (refusal is the extractive calibration's job).
SYSTEM_ZH = "你是问答助手。只根据资料回答，用提问的语言回答，1到3句，每句末尾用[1]、[2]这样的资料编号注明出处。"
ANSWER_IN_ENGLISH = "请用英文回答。"


class LLMError(RuntimeError):
    """The LLM server answered, but not with a usable completion (4xx, malformed JSON...)."""


class LLMUnavailable(LLMError):
    """The LLM server cannot be reached (not configured, connection refused, timeouts, repeated 5xx)."""


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to call the chat-completions API.

    Attributes:
        url: Base URL ending in ``/v1`` (``/chat/completions`` is appended).
        model: Model name sent in requests; "" asks the server (``GET /models``) once.
        api_key: Bearer token or "".
        connect_timeout: Seconds to wait for the TCP connection.
        read_timeout: Seconds to wait between bytes of the answer (a CPU prefill is slow).
        retries: Extra attempts after a connection error, 429 or 5xx.
        backoff: First back-off in seconds; doubled after each failed attempt.
    """

    url: str
    model: str = ""
    api_key: str = ""
    connect_timeout: float = 3.0
    read_timeout: float = 180.0
    retries: int = 2
    backoff: float = 0.5

    @classmethod
    def from_env(cls, **overrides: Any) -> "LLMConfig | None":
        """Configuration from ``WENDA_LLM_*`` variables, or None when ``WENDA_LLM_URL`` is unset."""
        url = os.environ.get(ENV_URL, "").strip()
        if not url:
            return None
        return cls(url=url, model=os.environ.get(ENV_MODEL, "").strip(),
                   api_key=os.environ.get(ENV_API_KEY, "").strip(), **overrides)

    @property
    def base(self) -> str:
        """The base URL without a trailing slash."""
        return self.url.rstrip("/")


def llm_configured() -> bool:
    """Whether ``WENDA_LLM_URL`` names a server (the UI enables the generated mode only then)."""
    return bool(os.environ.get(ENV_URL, "").strip())


@dataclass
class Completion:
    """A finished chat completion.

    Attributes:
        text: The generated message content.
        finish_reason: "stop", "length", ...
        usage: The server's token counts (may be empty).
        elapsed_ms: Wall-clock time of the request.
    """

    text: str
    finish_reason: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    elapsed_ms: float = 0.0


_RETRY_STATUS = {429, 500, 502, 503, 504}


class LLMClient:
    """Blocking client of an OpenAI-compatible ``/chat/completions`` endpoint (thread-safe).

    Args:
        config: Server address and timeouts; default :meth:`LLMConfig.from_env`.
        transport: Custom httpx transport (tests use ``httpx.MockTransport``).

    Raises:
        LLMUnavailable: no config given and ``WENDA_LLM_URL`` unset.
    """

    def __init__(self, config: LLMConfig | None = None, transport: httpx.BaseTransport | None = None) -> None:
        config = config or LLMConfig.from_env()
        if config is None:
            raise LLMUnavailable(f"no LLM server configured: set {ENV_URL}, e.g. http://127.0.0.1:8080/v1")
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        self._http = httpx.Client(timeout=timeout, headers=headers, transport=transport)
        self._model = config.model
        self._model_lock = threading.Lock()

    @classmethod
    def from_env(cls) -> "LLMClient | None":
        """A client for ``WENDA_LLM_URL``, or None when it is unset."""
        config = LLMConfig.from_env()
        return cls(config) if config else None

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> "LLMClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    def _unavailable(self, exc: Exception) -> LLMUnavailable:
        return LLMUnavailable(f"LLM server {self.config.base} unavailable: {type(exc).__name__}: {exc}")

    def _with_retries(self, send):
        """Call ``send()`` until it returns, retrying connection errors, 429 and 5xx with back-off."""
        delay = self.config.backoff
        last: Exception | None = None
        for attempt in range(self.config.retries + 1):
            if attempt:
                log.info("LLM request failed (%s); retry %d in %.1f s", last, attempt, delay)
                time.sleep(delay)
                delay *= 2
            try:
                return send()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                last = exc
            except httpx.TimeoutException as exc:
                # A read timeout means the server is alive but too slow: retrying only doubles the wait.
                raise LLMUnavailable(f"LLM server {self.config.base} timed out after "
                                     f"{self.config.read_timeout:.0f} s: {exc}") from exc
            except httpx.TransportError as exc:  # connection reset, protocol error...
                last = exc
            except _StatusError as exc:
                if exc.status not in _RETRY_STATUS:
                    raise LLMError(str(exc)) from exc
                last = exc
        assert last is not None
        raise self._unavailable(last) from last

    def model(self) -> str:
        """The model name to request: ``WENDA_LLM_MODEL`` or the server's first listed model."""
        if self._model:
            return self._model
        with self._model_lock:
            if not self._model:
                def send() -> str:
                    r = self._http.get(f"{self.config.base}/models", timeout=10.0)
                    _raise_for_status(r)
                    data = r.json().get("data") or []
                    return str(data[0].get("id", "")) if data else ""
                try:
                    self._model = self._with_retries(send) or "default"
                except LLMUnavailable:
                    raise
                except (LLMError, ValueError, AttributeError) as exc:
                    log.info("cannot list the server's models (%s); sending model 'default'", exc)
                    self._model = "default"
        return self._model

    def health(self, timeout: float = 2.0) -> bool:
        """Whether the server answers ``GET /models`` right now (no retries)."""
        try:
            r = self._http.get(f"{self.config.base}/models", timeout=timeout)
            return r.status_code < 500
        except httpx.HTTPError:
            return False

    def _payload(self, messages: Sequence[dict[str, str]], max_tokens: int, temperature: float,
                 stream: bool, stop: Sequence[str] | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model(), "messages": list(messages), "max_tokens": int(max_tokens),
            "temperature": float(temperature), "stream": stream,
        }
        if stop:
            payload["stop"] = list(stop)
        return payload

    # ------------------------------------------------------------------ API
    def chat(self, messages: Sequence[dict[str, str]], max_tokens: int = DEFAULT_MAX_TOKENS,
             temperature: float = 0.0, stop: Sequence[str] | None = None) -> Completion:
        """One non-streaming chat completion.

        Raises:
            LLMUnavailable: connection refused/reset, timeouts, or 429/5xx after the retries.
            LLMError: any other bad answer (4xx, malformed body).
        """
        payload = self._payload(messages, max_tokens, temperature, False, stop)
        url = f"{self.config.base}/chat/completions"
        t0 = time.perf_counter()

        def send() -> dict[str, Any]:
            r = self._http.post(url, json=payload)
            _raise_for_status(r)
            try:
                return r.json()
            except ValueError as exc:
                raise LLMError(f"LLM server returned non-JSON: {r.text[:200]!r}") from exc

        data = self._with_retries(send)
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(f"unexpected completion shape: {str(data)[:200]}") from exc
        return Completion(text=text, finish_reason=choice.get("finish_reason") or "",
                          usage=data.get("usage") or {}, elapsed_ms=(time.perf_counter() - t0) * 1000)

    def stream_chat(self, messages: Sequence[dict[str, str]], max_tokens: int = DEFAULT_MAX_TOKENS,
                    temperature: float = 0.0, stop: Sequence[str] | None = None) -> Iterator[str]:
        """Stream a chat completion (server-sent events), yielding text deltas as they arrive.

        Connection errors before the first byte are retried like :meth:`chat`; a stream cut
        half-way raises :class:`LLMUnavailable`.
        """
        payload = self._payload(messages, max_tokens, temperature, True, stop)
        url = f"{self.config.base}/chat/completions"

        def send() -> httpx.Response:
            request = self._http.build_request("POST", url, json=payload, headers={"Accept": "text/event-stream"})
            response = self._http.send(request, stream=True)
            if response.status_code >= 400:
                response.read()
                response.close()
                _raise_for_status(response)
            return response

        response = self._with_retries(send)
        try:
            for line in response.iter_lines():
                if not line or not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                except ValueError:
                    log.debug("skipping malformed SSE line %r", line[:120])
                    continue
                if isinstance(event, dict) and event.get("error"):
                    raise LLMError(f"LLM server error mid-stream: {event['error']}")
                for choice in event.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        yield delta
        except httpx.TimeoutException as exc:
            raise LLMUnavailable(f"LLM stream from {self.config.base} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        finally:
            response.close()


class _StatusError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"LLM server answered HTTP {status}: {body[:200]}")
        self.status = status


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            body = response.text
        except httpx.ResponseNotRead:
            body = ""
        raise _StatusError(response.status_code, body)


# ---------------------------------------------------------------------------- prompt
_BIGRAM_SKIP = re.compile(r"[\s\W_]+")


def _bigrams(text: str) -> set[str]:
    t = _BIGRAM_SKIP.sub("", normalize(text))
    return {t[i:i + 2] for i in range(len(t) - 1)} | set(t if not has_cjk(t) else ())


def trim_passage(text: str, question: str, max_chars: int = DEFAULT_PASSAGE_CHARS) -> str:
    """The passage cut to ``max_chars``: the sentences sharing most with the question, in order.

    Sentences are scored by character-bigram overlap with the question; the best ones are kept
    (document order preserved, "…" where text was skipped) until the budget is spent. A single
    sentence longer than the budget is cut around its first overlap.
    """
    text = text.strip()
    if len(text) <= max_chars:
        return text
    spans = passage_sentences(text) or [(0, len(text))]
    q = _bigrams(question)
    scored = sorted(range(len(spans)), key=lambda i: (-len(_bigrams(text[spans[i][0]:spans[i][1]]) & q), i))
    chosen: list[int] = []
    used = 0
    for i in scored:
        s, e = spans[i]
        if used + (e - s) <= max_chars:
            chosen.append(i)
            used += e - s
    if not chosen:
        s, e = spans[scored[0]]
        sent = text[s:e]
        norm = normalize(sent)
        hits = [norm.find(b) for b in q if norm.find(b) >= 0]
        start = max(0, min(hits) - max_chars // 4) if hits else 0
        piece = sent[start:start + max_chars]
        return ("…" if start or s else "") + piece + ("…" if start + max_chars < len(sent) or e < len(text) else "")
    chosen.sort()
    out, prev_end = [], 0
    for i in chosen:
        s, e = spans[i]
        if s > prev_end:
            out.append("…")
        out.append(text[s:e])
        prev_end = e
    if prev_end < len(text):
        out.append("…")
    return "".join(out)


def _heading(passage: Any) -> str:
    title = getattr(passage, "title", "") or ""
    date = getattr(passage, "date", "") or ""
    section = (getattr(passage, "section", "") or "").split(" › ")[-1]
    meta = "，".join(x for x in (date, section) if x and x not in title)
    return f"《{title}》" + (f"（{meta}）" if meta else "")


def build_messages(question: str, passages: Sequence[Any], max_chars: int = DEFAULT_PASSAGE_CHARS,
                   ) -> list[dict[str, str]]:
    """Chat messages asking for an answer from numbered passages only, citing them as [n].

    Args:
        question: The (standalone) question.
        passages: Passages (or Hits; ``.passage`` is used) numbered [1]..[n] in this order.
        max_chars: Character budget of each passage (see :func:`trim_passage`).
    """
    blocks = []
    for n, p in enumerate(passages, 1):
        p = getattr(p, "passage", p)
        blocks.append(f"[{n}] {_heading(p)}\n{trim_passage(p.text, question, max_chars)}")
    lang_hint = "" if has_cjk(question) else ANSWER_IN_ENGLISH
    user = "资料：\n" + "\n\n".join(blocks) + f"\n\n问题：{question.strip()}" + (f"\n{lang_hint}" if lang_hint else "")
    return [{"role": "system", "content": SYSTEM_ZH}, {"role": "user", "content": user}]


__all__ = [
    "ENV_URL", "ENV_MODEL", "ENV_API_KEY", "LLMConfig", "LLMClient", "LLMError", "LLMUnavailable", "Completion",
    "build_messages", "trim_passage", "llm_configured",
]
