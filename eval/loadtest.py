"""Load test of the web app: many concurrent gradio_client users asking through the ``/ask`` API.

    python -m eval loadtest [--clients 20] [--questions 50] [--timeout 900] [--json OUT]
    python -m eval.loadtest --url http://127.0.0.1:7860/    # against a server that is already running

Starts ``python app.py`` as a subprocess on a free loopback port (``GRADIO_SERVER_PORT``;
``--home`` becomes ``WENDA_HOME``, the workspace it serves), waits until it answers
a first question (the model and index load in the background), then lets ``--clients`` threads,
each with its own ``gradio_client.Client``, ask ``--questions`` questions each (cycled from the
gold file) back to back. Everything is bounded by ``--timeout``; a question not answered in
time counts as an error. Every answer must be well-formed (see :func:`check_answer`). Reports
errors, throughput, latency percentiles and the server's peak RSS, then stops the server.
Exit code 0 when there were no errors, 1 otherwise, 2 when the server did not start.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOLD = ROOT / "data" / "gold" / "taiyuan_gold.jsonl"
API_NAME = "/ask"


class ServerError(RuntimeError):
    """The app did not start or stopped answering; the message holds the end of its log."""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_questions(path: str | Path = DEFAULT_GOLD) -> list[str]:
    """The ``question`` field of every line of a gold ``.jsonl`` file, in order."""
    questions = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                questions.append(json.loads(line)["question"])
    if not questions:
        raise ValueError(f"{path} has no questions")
    return questions


def check_answer(result: Any) -> str | None:
    """Why an ``/ask`` result is malformed, or None when it is well-formed.

    Well-formed: a dict with string ``answer``/``short_answer``/``sentence``/``rewritten_query``,
    boolean ``not_found``, list ``citations``; an answer cites at least one passage and its
    sentence is exactly ``citations[0].text[start:end]``; a refusal carries a message.
    """
    if not isinstance(result, dict):
        return f"result is {type(result).__name__}, not a dict"
    for key in ("answer", "short_answer", "sentence", "rewritten_query"):
        if not isinstance(result.get(key), str):
            return f"{key!r} is {type(result.get(key)).__name__}, not a string"
    if not isinstance(result.get("not_found"), bool):
        return "'not_found' is not a boolean"
    citations = result.get("citations")
    if not isinstance(citations, list):
        return "'citations' is not a list"
    if result["not_found"]:
        if not (result.get("message") or result["answer"]):
            return "refusal without a message"
        return None
    if not citations:
        return "answer without citations"
    c = citations[0]
    try:
        span = c["text"][c["start"]:c["end"]]
    except (KeyError, TypeError) as exc:
        return f"citation 1 is malformed ({exc!r})"
    if result["sentence"] and span != result["sentence"]:
        return "sentence is not citations[0].text[start:end]"
    if not result["answer"].strip():
        return "empty answer text"
    return None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class AppServer:
    """``python app.py`` in a subprocess on a free loopback port; use as a context manager.

    Args:
        home: Workspace folder (``WENDA_HOME``), default the app's.
        port: Port (default a free one).
        start_timeout: Seconds to wait for the first answer (model load, or an index build).
        env: Extra environment variables.
        keep_log: Keep the server's log file after :meth:`stop` (it is kept anyway when start fails).
    """

    def __init__(self, home: str | Path | None = None, port: int | None = None,
                 start_timeout: float = 300.0, env: dict[str, str] | None = None, keep_log: bool = False) -> None:
        self.keep_log = keep_log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.start_timeout = start_timeout
        self.env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
                    "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
        if home:
            self.env["WENDA_HOME"] = str(Path(home).resolve())
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self.log_path: Path | None = None
        self.startup_s = 0.0

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's output."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def start(self) -> "AppServer":
        """Start the server and wait until ``/ask`` answers a first question.

        Raises:
            ServerError: the process exited or did not answer within ``start_timeout``.
        """
        fd, name = tempfile.mkstemp(prefix="wenda-loadtest-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        self._log_file = self.log_path.open("w", encoding="utf-8")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=self.env,
                                     stdout=self._log_file, stderr=subprocess.STDOUT)
        log.info("started app.py (pid %d) on %s, log %s", self.proc.pid, self.url, self.log_path)
        deadline = time.monotonic() + self.start_timeout
        try:
            self._wait_http(deadline)
            self._warm_up(deadline)
        except BaseException:
            self.keep_log = True
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0
        log.info("app answers after %.1f s", self.startup_s)
        return self

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerError(f"app.py exited with code {self.proc.returncode}:\n{self.log_tail()}")

    def _wait_http(self, deadline: float) -> None:
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"app.py did not open {self.url} in {self.start_timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def _warm_up(self, deadline: float) -> None:
        """Ask one question (waits for the background model/index load)."""
        from gradio_client import Client

        client = Client(self.url, verbose=False)
        job = client.submit("预热", [], 5, api_name=API_NAME)
        while True:
            self._check_alive()
            try:
                job.result(timeout=2)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise ServerError(f"app.py did not answer in {self.start_timeout:.0f} s:\n{self.log_tail()}") from None
            except Exception as exc:
                raise ServerError(f"warm-up question failed ({exc}):\n{self.log_tail()}") from exc

    def rss_mb(self) -> float:
        """Resident memory of the server process (and its children) in MB; 0 when it is gone."""
        import psutil

        try:
            p = psutil.Process(self.proc.pid)
            return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20
        except (psutil.Error, AttributeError):
            return 0.0

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s) and close its log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log.warning("app.py (pid %d) ignored SIGTERM; killing it", self.proc.pid)
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
            if self.keep_log:
                log.info("server log kept at %s", self.log_path)
            elif self.log_path is not None:
                self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _RssSampler(threading.Thread):
    """Samples a server's RSS every ``interval`` seconds; keeps the peak."""

    def __init__(self, server: AppServer | None, interval: float = 0.5) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.server, self.interval, self.peak = server, interval, 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while self.server is not None and not self._halt.is_set():
            self.peak = max(self.peak, self.server.rss_mb())
            self._halt.wait(self.interval)

    def stop(self) -> float:
        self._halt.set()
        return self.peak


def run_load(url: str, questions: Sequence[str], clients: int = 20, per_client: int = 50, timeout: float = 900.0,
             k: int = 5, server: AppServer | None = None, progress: bool = True) -> dict[str, Any]:
    """Ask ``clients`` × ``per_client`` questions concurrently through ``/ask``.

    Client ``c`` asks questions ``c·per_client + i`` (cycled), one after the other.

    Args:
        url: The app's URL.
        questions: Question pool.
        clients: Concurrent users (threads, one ``gradio_client.Client`` each).
        per_client: Questions per user.
        timeout: Global bound in seconds for the whole run (questions not answered by then are errors).
        k: Passages per answer.
        server: The AppServer, to sample its memory.
        progress: Show a tqdm bar.

    Returns:
        ``{"summary": {...}, "errors": [...], "requests": [...]}``.
    """
    from gradio_client import Client

    total = clients * per_client
    records: list[dict[str, Any]] = []
    lock = threading.Lock()
    start_at: list[float] = []
    barrier = threading.Barrier(clients + 1, action=lambda: start_at.append(time.perf_counter()))
    bar = tqdm(total=total, desc="load test", unit="q", disable=not progress)

    def user(c: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as exc:  # counted below: every question of this user is an error
            client, setup_error = None, f"client setup failed: {type(exc).__name__}: {exc}"
        else:
            setup_error = ""
        try:
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass
        deadline = start_at[0] + timeout if start_at else time.perf_counter() + timeout
        for i in range(per_client):
            q = questions[(c * per_client + i) % len(questions)]
            rec: dict[str, Any] = {"client": c, "i": i, "question": q, "ms": None, "error": None,
                                   "not_found": None, "short_answer": None}
            remaining = deadline - time.perf_counter()
            if setup_error:
                rec["error"] = setup_error
            elif remaining <= 0:
                rec["error"] = "not asked: global timeout reached"
            else:
                t0 = time.perf_counter()
                try:
                    result = client.submit(q, [], k, api_name=API_NAME).result(timeout=remaining)
                    rec["ms"] = (time.perf_counter() - t0) * 1000
                    problem = check_answer(result)
                    if problem:
                        rec["error"] = f"malformed answer: {problem}"
                    else:
                        rec["not_found"], rec["short_answer"] = result["not_found"], result["short_answer"]
                except TimeoutError:
                    rec["error"] = f"no answer within the global timeout ({timeout:.0f} s)"
                except Exception as exc:
                    rec["ms"] = (time.perf_counter() - t0) * 1000
                    rec["error"] = f"{type(exc).__name__}: {exc}"
            with lock:
                records.append(rec)
                bar.update(1)

    threads = [threading.Thread(target=user, args=(c,), name=f"user-{c}", daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    sampler = _RssSampler(server)
    sampler.start()
    rss_before = server.rss_mb() if server else 0.0
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        log.warning("not every client connected within 120 s")
    t0 = start_at[0] if start_at else time.perf_counter()
    for t in threads:
        t.join(timeout=max(0.0, t0 + timeout + 30 - time.perf_counter()))
    wall = time.perf_counter() - t0
    bar.close()
    peak = sampler.stop()
    with lock:
        done = list(records)
    missing = total - len(done)
    ok = [r for r in done if r["error"] is None]
    errors = [r for r in done if r["error"] is not None]
    lat = [r["ms"] for r in ok]
    summary = {
        "clients": clients, "questions_per_client": per_client, "requests": total, "answered": len(ok),
        "errors": len(errors) + missing, "not_found": sum(1 for r in ok if r["not_found"]),
        "wall_s": round(wall, 2), "throughput_qps": round(len(ok) / wall, 2) if wall > 0 else 0.0,
        "p50_ms": _round(_percentile(lat, 50)), "p95_ms": _round(_percentile(lat, 95)),
        "p99_ms": _round(_percentile(lat, 99)), "mean_ms": _round(sum(lat) / len(lat) if lat else None),
        "max_ms": _round(max(lat) if lat else None), "timeout_s": timeout,
        "server_rss_start_mb": round(rss_before, 1), "server_rss_peak_mb": round(peak, 1),
    }
    error_list = [f"client {r['client']} #{r['i']} {r['question'][:40]!r}: {r['error']}" for r in errors]
    if missing:
        error_list.append(f"{missing} request(s) never finished (threads still blocked after the timeout)")
    return {"summary": summary, "errors": error_list, "requests": sorted(done, key=lambda r: (r["client"], r["i"]))}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def format_table(summary: dict[str, Any]) -> str:
    """A two-column text table of the summary."""
    rows = [
        ("clients × questions", f"{summary['clients']} × {summary['questions_per_client']} = {summary['requests']}"),
        ("answered / errors", f"{summary['answered']} / {summary['errors']}"),
        ("of which 'not found'", str(summary["not_found"])),
        ("wall time", f"{summary['wall_s']} s"),
        ("throughput", f"{summary['throughput_qps']} q/s"),
        ("latency p50 / p95 / p99", f"{summary['p50_ms']} / {summary['p95_ms']} / {summary['p99_ms']} ms"),
        ("latency mean / max", f"{summary['mean_ms']} / {summary['max_ms']} ms"),
        ("server RSS start / peak", f"{summary['server_rss_start_mb']} / {summary['server_rss_peak_mb']} MB"),
    ]
    if "startup_s" in summary:
        rows.insert(0, ("server start → first answer", f"{summary['startup_s']} s"))
    width = max(len(a) for a, _ in rows)
    line = "-" * (width + 2 + max(len(b) for _, b in rows))
    return "\n".join([line, *(f"{a.ljust(width)}  {b}" for a, b in rows), line])


def run(clients: int = 20, per_client: int = 50, timeout: float = 900.0, gold: str | Path = DEFAULT_GOLD,
        home: str | Path | None = None, url: str | None = None,
        start_timeout: float = 300.0, k: int = 5, progress: bool = True) -> dict[str, Any]:
    """Start the app (unless ``url`` is given), run the load, stop the app.

    Raises:
        ServerError: the app did not start.
    """
    questions = load_questions(gold)
    if url:
        result = run_load(url, questions, clients, per_client, timeout, k=k, progress=progress)
        result["summary"]["url"] = url
        return result
    with AppServer(home, start_timeout=start_timeout) as server:
        result = run_load(server.url, questions, clients, per_client, timeout, k=k, server=server, progress=progress)
        result["summary"]["startup_s"] = round(server.startup_s, 1)
        if server.proc is not None and server.proc.poll() is not None:
            result["errors"].append(f"app.py exited during the run (code {server.proc.returncode})")
            result["summary"]["errors"] += 1
        if result["summary"]["errors"]:
            server.keep_log = True
            result["summary"]["server_log"] = str(server.log_path)
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (``python -m eval loadtest`` / ``python -m eval.loadtest``)."""
    p = argparse.ArgumentParser(prog="python -m eval loadtest", description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20, help="concurrent users (default 20)")
    p.add_argument("--questions", type=int, default=50, help="questions per user (default 50)")
    p.add_argument("--timeout", type=float, default=900.0, help="global bound for the run in seconds (default 900)")
    p.add_argument("--start-timeout", type=float, default=300.0, help="seconds to wait for the server's first answer")
    p.add_argument("--gold", default=str(DEFAULT_GOLD), help="question pool (.jsonl with 'question')")
    p.add_argument("--home", help="WENDA_HOME (workspace) for the server")
    p.add_argument("--url", help="use a running server instead of starting app.py")
    p.add_argument("--k", type=int, default=5, help="passages per answer (default 5)")
    p.add_argument("--json", help="write summary, errors and per-request records here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.clients < 1 or args.questions < 1 or args.timeout <= 0:
        print("error: --clients and --questions must be positive, --timeout > 0", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        result = run(args.clients, args.questions, args.timeout, args.gold, args.home, args.url,
                     args.start_timeout, args.k, progress=not args.quiet)
    except (ServerError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result["summary"]))
    for line in result["errors"][:20]:
        print(f"  {line}")
    if len(result["errors"]) > 20:
        print(f"  … {len(result['errors']) - 20} more")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0 if result["summary"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
