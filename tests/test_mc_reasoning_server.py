"""Generative multiple choice against a scripted reasoning server on 127.0.0.1 (stdlib HTTP): `<think>` traces
in the content, a thought returned apart as `reasoning_content`, a thought cut off by max_tokens; through the
OpenAI backend at concurrency 8 and 1, the same letters."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from evalkit.backends._openai import OpenAIBackend
from evalkit.backends._openai_http import RetryPolicy
from evalkit.tasks._mc_generative import generative_info, parse_mc_options, run_generative
from evalkit.tasks._thinking import reasoning_from_reply
from evalkit.tasks.multiple_choice import Question

# question keyword -> (reasoning_content or None, content, finish_reason)
SCRIPT: dict[str, tuple[str | None, str, str]] = {
    "首都": (None, "<think>上海是经济中心，不是首都。北京是首都。</think>\n\n答案：B", "stop"),
    "化学式": ("CO2是二氧化碳，O2是氧气，H2O是水。", "答案：C", "stop"),
    "季节": (None, "<think>春夏秋冬……A是两个，B是三个，C", "length"),
    "月亮": ("The Moon orbits the Earth.", "The answer is (A).", "stop"),
}
QUESTIONS = [
    Question(0, "中国的首都是哪座城市？", ("上海", "北京", "广州", "深圳"), "B", {}),
    Question(1, "水的化学式是什么？", ("CO2", "O2", "H2O", "NaCl"), "C", {}),
    Question(2, "一年有几个季节？", ("两个", "三个", "四个", "五个"), "C", {}),
    Question(3, "月亮绕什么转？", ("地球", "太阳", "火星", "金星"), "A", {}),
] * 3  # twelve requests, enough to keep eight connections busy


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"]
        reasoning, content, finish = next(v for k, v in SCRIPT.items() if k in question)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        reply = {"id": "x", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                 "usage": {"prompt_tokens": len(question), "completion_tokens": len(content)}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def reasoning_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _run(url: str, concurrency: int) -> list[dict[str, Any]]:
    backend = OpenAIBackend("reasoner", base_url=url, concurrency=concurrency,
                            policy=RetryPolicy(max_retries=1, backoff_base=0.001, backoff_max=0.01, timeout=5.0))
    return run_generative(QUESTIONS, backend, parse_mc_options({"mode": "cot"}), subject="s", letters="ABCD")


def test_thinking_stays_out_of_extraction_over_http(reasoning_server: str) -> None:
    records = _run(reasoning_server, concurrency=8)
    assert [r["prediction"] for r in records[:4]] == ["B", "C", None, "A"]
    assert [r["extraction_stage"] for r in records[:4]] == ["strict", "strict", "none", "lenient"]
    assert records[0]["thinking"] == "上海是经济中心，不是首都。北京是首都。" and records[0]["answer"] == "答案：B"
    assert records[2]["truncated_in_thought"] and records[2]["finish_reason"] == "length"
    assert records[2]["answer"] == "" and "C" in records[2]["thinking"]  # the thought's letters are not read
    thinking = generative_info(records, parse_mc_options({"mode": "cot"}))["thinking"]
    assert thinking["truncated_in_thought"] == 3 and thinking["truncated_in_thought_rate"] == pytest.approx(0.25)
    assert [r["prediction"] for r in _run(reasoning_server, concurrency=1)] == [r["prediction"] for r in records]


def test_reasoning_content_is_read_from_the_servers_reply(reasoning_server: str) -> None:
    reply = httpx.post(f"{reasoning_server}/chat/completions", timeout=5.0, json={
        "model": "reasoner", "messages": [{"role": "user", "content": "水的化学式是什么？"}]}).json()
    assert reasoning_from_reply(reply, 1) == ("CO2是二氧化碳，O2是氧气，H2O是水。",)
    assert reply["choices"][0]["message"]["content"] == "答案：C"  # the answer alone carries no thought
