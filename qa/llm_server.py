"""Run a local OpenAI-compatible LLM server (llama.cpp through the ``xllamacpp`` wheel) on loopback.

    python -m qa.llm_server --model ~/.cache/wenda/llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf [--port 8080]

prints ``WENDA_LLM_URL=http://127.0.0.1:PORT/v1`` once the model is loaded and serves until
interrupted. From Python (tests, eval), :class:`LocalLLMServer` starts the same command in a child
process on a free port and stops it again::

    with LocalLLMServer(gguf_path) as server:
        client = LLMClient(LLMConfig(server.url))

``xllamacpp`` is optional (``pip install -r requirements-llm.txt``); nothing else imports it.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx

log = logging.getLogger(__name__)

DEFAULT_CTX = 2048
DEFAULT_THREADS = 2
READY_PREFIX = "WENDA_LLM_URL="


class LLMServerError(RuntimeError):
    """The server could not be started (xllamacpp missing, bad model file, load timeout)."""


def serve(model: str | Path, port: int = 0, host: str = "127.0.0.1", ctx: int = DEFAULT_CTX,
          threads: int = DEFAULT_THREADS, parallel: int = 1) -> Any:
    """Start llama.cpp's HTTP server in this process; returns the ``xllamacpp.Server`` (keep a reference).

    Args:
        model: GGUF file.
        port: TCP port; 0 picks a free one (read it from ``server.listening_address``).
        host: Listen address (loopback by default; the server has no authentication).
        ctx: Context size in tokens.
        threads: CPU threads for prompt processing and generation.
        parallel: Concurrent request slots (each gets ``ctx / parallel`` tokens).

    Raises:
        LLMServerError: xllamacpp is not installed or the model does not exist.
    """
    try:
        import xllamacpp as xlc
    except ImportError as exc:
        raise LLMServerError("xllamacpp is not installed: pip install -r requirements-llm.txt") from exc
    path = Path(model).expanduser()
    if not path.is_file():
        raise LLMServerError(f"model file {path} does not exist (scripts/get_test_llm.sh fetches the test model)")
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_ctx = ctx
    params.n_parallel = parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.hostnames = [host]
    params.port = port
    params.warmup = True
    return xlc.Server(params)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line: load the model, print the URL, serve until SIGINT/SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m qa.llm_server", description="Local OpenAI-compatible LLM server.")
    p.add_argument("--model", required=True, help="GGUF file (scripts/get_test_llm.sh prints the test model's path)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    p.add_argument("--ctx", type=int, default=DEFAULT_CTX, help=f"context tokens (default {DEFAULT_CTX})")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS, help=f"CPU threads (default {DEFAULT_THREADS})")
    p.add_argument("--parallel", type=int, default=1, help="request slots (default 1)")
    p.add_argument("--parent-pid", type=int, help="exit when this process ends (used by LocalLLMServer)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        server = serve(args.model, args.port, args.host, args.ctx, args.threads, args.parallel)
    except LLMServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"{READY_PREFIX}{server.listening_address}/v1", flush=True)
    while not stop.wait(2.0):
        if args.parent_pid and not _alive(args.parent_pid):
            log.info("parent %d is gone: stopping", args.parent_pid)
            break
    del server
    return 0


class LocalLLMServer:
    """A ``python -m qa.llm_server`` child process on a free loopback port (a context manager).

    Args:
        model: GGUF file.
        ctx: Context size.
        threads: CPU threads.
        startup_timeout: Seconds to wait for the model to load.
        log_file: Where the server's own (verbose) log goes; default a temporary file.
    """

    def __init__(self, model: str | Path, ctx: int = DEFAULT_CTX, threads: int = DEFAULT_THREADS,
                 startup_timeout: float = 180.0, log_file: str | Path | None = None) -> None:
        self.model = Path(model).expanduser()
        self.ctx = ctx
        self.threads = threads
        self.startup_timeout = startup_timeout
        self._own_log = log_file is None  # a temporary log is deleted on stop
        self.log_path: Path | None = Path(log_file) if log_file else None
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> "LocalLLMServer":
        """Start the child and wait until it serves ``GET /v1/models``.

        Raises:
            LLMServerError: the child exited or did not become ready in time (its log is quoted).
        """
        if not self.model.is_file():
            raise LLMServerError(f"model file {self.model} does not exist")
        cmd = [sys.executable, "-m", "qa.llm_server", "--model", str(self.model), "--ctx", str(self.ctx),
               "--threads", str(self.threads), "--parent-pid", str(os.getpid())]
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="wenda-llm-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ)
        env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, cwd=root, env=env)
        deadline = time.monotonic() + self.startup_timeout
        line_box: list[bytes] = []
        reader = threading.Thread(target=lambda: line_box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        line = line_box[0].decode("utf-8", "replace").strip() if line_box else ""
        if not line.startswith(READY_PREFIX):
            tail = self.log_tail()
            self.stop()
            raise LLMServerError(f"LLM server did not start (output {line!r}); log tail:\n{tail}")
        self.url = line[len(READY_PREFIX):]
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/models", timeout=2.0).status_code == 200:
                    log.info("LLM server ready at %s (pid %d)", self.url, self.proc.pid)
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise LLMServerError(f"LLM server at {self.url} not ready; log tail:\n{tail}")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log."""
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
            if self._own_log and self.log_path is not None:
                self.log_path.unlink(missing_ok=True)
                self.log_path = None

    def __enter__(self) -> "LocalLLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
