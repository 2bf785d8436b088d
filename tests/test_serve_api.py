"""`evalkit serve` speaks the OpenAI API: checked with raw HTTP, with the official openai SDK, and via the CLI."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.server import create_app, serve_in_thread
from evalkit.types import GenConfig, Message


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_thread(create_app(FakeBackend(), "fake:echo")) as base:
        yield base


def test_models_lists_the_served_model(url: str) -> None:
    data = httpx.get(f"{url}/models").json()["data"]
    assert [m["id"] for m in data] == ["fake:echo"]
    assert data[0]["owned_by"] == "evalkit" and data[0]["evalkit_identity"]["backend"] == "fake"


def test_chat_completions_with_the_openai_sdk(url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="fake:echo", messages=[{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "hello there. friend"}],
        max_tokens=50, n=2, temperature=0.5, seed=3, stop=["."])
    assert [c.message.content for c in reply.choices] == ["hello there", "hello there"]
    assert [c.index for c in reply.choices] == [0, 1]
    want = FakeBackend().generate([(Message("system", "be brief"), Message("user", "hello there. friend"))],
                                  GenConfig(temperature=0.5, max_tokens=50, n=2, seed=3, stop=(".",)))[0]
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (want.usage.prompt_tokens,
                                                                          want.usage.completion_tokens)


def test_completions_echo_logprobs_with_the_openai_sdk(url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    prompt = "答案：B"
    reply = client.completions.create(model="fake:echo", prompt=[prompt, "xy"], max_tokens=0, echo=True,
                                      logprobs=1)
    first = reply.choices[0]
    assert first.text == prompt and first.logprobs is not None
    assert first.logprobs.tokens == list(prompt) and first.logprobs.text_offset == [0, 1, 2, 3]
    want = FakeBackend().loglikelihood_rolling([prompt])[0].logprobs
    assert first.logprobs.token_logprobs == list(want)
    assert reply.choices[1].logprobs is not None and reply.choices[1].logprobs.tokens == ["x", "y"]


def test_completions_generate_raw_text(url: str) -> None:
    body = {"model": "fake:echo", "prompt": "continue me", "max_tokens": 5, "echo": True}
    reply = httpx.post(f"{url}/completions", json=body).json()
    assert reply["choices"][0]["text"] == "continue me" + "conti"
    assert reply["usage"]["completion_tokens"] == 5


def test_errors_are_openai_shaped(url: str) -> None:
    wrong = httpx.post(f"{url}/chat/completions", json={"model": "gpt-4", "messages": []})
    assert wrong.status_code == 404 and "fake:echo" in wrong.json()["error"]["message"]
    bad = httpx.post(f"{url}/chat/completions", json={"model": "fake:echo", "messages": "hi"})
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]
    role = httpx.post(f"{url}/chat/completions", json={"model": "fake:echo",
                                                       "messages": [{"role": "tool", "content": "x"}]})
    assert role.status_code == 400 and "role" in role.json()["error"]["message"]
    stream = httpx.post(f"{url}/completions", json={"model": "fake:echo", "stream": True, "prompt": "x",
                                                    "echo": True, "logprobs": 1, "max_tokens": 0})
    assert stream.status_code == 400 and "stream" in stream.json()["error"]["message"]
    no_echo = httpx.post(f"{url}/completions", json={"model": "fake:echo", "prompt": "x", "max_tokens": 0,
                                                     "logprobs": 1})
    assert no_echo.status_code == 400 and "echo" in no_echo.json()["error"]["message"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration  # a CLI subprocess serving a model
def test_the_serve_command(tmp_path: object) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cache = f"{tmp_path}/serve-cache.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "serve", "--model", "fake:echo", "--port",
                             str(port), "--model-args", "max_length=32", "--log-level", "warning",
                             "--cache", cache],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).json()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"evalkit serve did not come up: {out}")
                time.sleep(0.2)
        assert models["data"][0]["id"] == "fake:echo"
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                           json={"model": "fake:echo", "messages": [{"role": "user", "content": "ping"}]}).json()
        assert reply["choices"][0]["message"]["content"] == "ping"
        with sqlite3.connect(cache) as db:  # the served backend writes through the response cache
            assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.integration  # a CLI subprocess
def test_serve_command_bad_model_is_a_user_error() -> None:
    done = subprocess.run([sys.executable, "-m", "evalkit.cli", "serve", "--model", "nosuch:thing"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("error: unknown model")
