"""serve.py's OpenAI-compatible endpoints against a tiny random GPT-2 (needs torch + transformers)."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

torch = pytest.importorskip("torch", reason="serve.py tests need torch (pip install -r python/requirements-test.txt)")
transformers = pytest.importorskip("transformers")

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVE = os.path.join(REPO, "recipes", "torch", "serve.py")
TOKENIZER = os.path.join(REPO, "packages", "worker", "test", "fixtures", "train", "tokenizer", "tokenizer.json")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import shutil

    model_dir = tmp_path_factory.mktemp("model")
    config = transformers.AutoConfig.for_model("gpt2", n_layer=2, n_embd=32, n_head=2, vocab_size=8192, n_positions=64, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
    shutil.copy(TOKENIZER, model_dir / "tokenizer.json")
    proc = subprocess.Popen([sys.executable, SERVE, "--model", str(model_dir), "--name", "tiny", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = None
    for line in proc.stdout:
        if line.startswith("NEXA_SERVE_LISTENING "):
            url = line.split(" ", 1)[1].strip()
            break
    assert url, "the server did not report its address"
    yield url
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, json.loads(r.read())


def post(url, body, raw=False):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
            return r.status, (data.decode() if raw else json.loads(data)), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def events(text):
    out = [l[len("data: "):] for l in text.split("\n") if l.startswith("data: ")]
    assert out[-1] == "[DONE]"
    return [json.loads(e) for e in out[:-1]]


def test_health_and_models(server):
    assert get(server + "/health") == (200, {"status": "ok", "model": "tiny"})
    status, body = get(server + "/v1/models")
    assert status == 200
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["tiny"]


def test_completion_greedy_with_logprobs(server):
    body = {"model": "tiny", "prompt": "The package", "max_tokens": 5, "temperature": 0, "logprobs": 2}
    status, r, _ = post(server + "/v1/completions", body)
    assert status == 200
    assert r["object"] == "text_completion"
    choice = r["choices"][0]
    assert choice["finish_reason"] in ("length", "stop")
    lp = choice["logprobs"]
    n = r["usage"]["completion_tokens"]
    assert 1 <= n <= 5 and len(lp["tokens"]) == n and len(lp["token_logprobs"]) == n
    assert all(v <= 0 for v in lp["token_logprobs"])
    # Greedy: the chosen token is the most likely one, so its logprob is the top entry's.
    for tok_lp, top in zip(lp["token_logprobs"], lp["top_logprobs"]):
        assert len(top) == 2
        assert tok_lp == pytest.approx(max(top.values()), abs=1e-5)
    assert "".join(lp["tokens"]) == choice["text"]
    assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + n
    # Deterministic.
    assert post(server + "/v1/completions", body)[1]["choices"][0]["text"] == choice["text"]


def test_completion_streams_the_same_text(server):
    body = {"model": "tiny", "prompt": "Debian", "max_tokens": 6, "temperature": 0}
    full = post(server + "/v1/completions", body)[1]["choices"][0]["text"]
    status, text, headers = post(server + "/v1/completions", {**body, "stream": True, "stream_options": {"include_usage": True}}, raw=True)
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    chunks = events(text)
    assert "".join(c["choices"][0]["text"] for c in chunks) == full
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    assert chunks[-1]["usage"]["completion_tokens"] >= 1


def test_chat_completion_and_stream(server):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4, "temperature": 0, "logprobs": True, "top_logprobs": 3}
    status, r, _ = post(server + "/v1/chat/completions", body)
    assert status == 200
    assert r["object"] == "chat.completion"
    msg = r["choices"][0]["message"]
    assert msg["role"] == "assistant" and isinstance(msg["content"], str)
    content_lp = r["choices"][0]["logprobs"]["content"]
    assert len(content_lp) == r["usage"]["completion_tokens"]
    assert all(len(e["top_logprobs"]) == 3 and e["logprob"] <= 0 for e in content_lp)
    status, text, _ = post(server + "/v1/chat/completions", {**body, "stream": True, "logprobs": False}, raw=True)
    chunks = events(text)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == msg["content"]


def test_sampling_with_a_seed_is_reproducible(server):
    body = {"prompt": "man page", "max_tokens": 8, "temperature": 1.0, "top_p": 0.9, "seed": 7}
    a = post(server + "/v1/completions", body)[1]["choices"][0]["text"]
    b = post(server + "/v1/completions", body)[1]["choices"][0]["text"]
    assert a == b


def test_openai_style_errors(server):
    status, r, _ = post(server + "/v1/completions", {"model": "other", "prompt": "x"})
    assert status == 404 and r["error"]["code"] == "model_not_found"
    status, r, _ = post(server + "/v1/chat/completions", {"model": "tiny", "messages": []})
    assert status == 400 and r["error"]["param"] == "messages"
    status, r, _ = post(server + "/v1/completions", {"prompt": "x", "temperature": "hot"})
    assert status == 400 and r["error"]["param"] == "temperature"
    status, r, _ = post(server + "/v1/completions", {"prompt": "x " * 80})
    assert status == 400 and r["error"]["code"] == "context_length_exceeded"
