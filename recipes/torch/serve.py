#!/usr/bin/env python3
"""Nexa Forge reference model server: an OpenAI-compatible HTTP API for a saved causal LM.

    python serve.py --model outputs/model --name tiny-gpt --port 0

Endpoints: `GET /health`, `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`
(both with `stream: true` as server-sent events, `logprobs`, `stop`, `temperature`, `top_p`,
`seed`, `max_tokens`). The model folder is what `save_pretrained` writes plus a
`tokenizer.json` (the torch recipe copies it there). Once listening, prints one line
`NEXA_SERVE_LISTENING <url>` (with the real port when `--port 0`).

Standard library HTTP (ThreadingHTTPServer); generation is serialised by one lock, which is what
a CPU or single-GPU reference server can do honestly. Use vLLM for throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTENING_PREFIX = "NEXA_SERVE_LISTENING "


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


class Engine:
    """A model and its tokenizer; `generate` yields one token at a time."""

    def __init__(self, model_dir: str, name: str, device: str | None, chat_template: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

        self.torch = torch
        self.name = name
        self.created = int(time.time())
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        tok_file = os.path.join(model_dir, "tokenizer.json")
        if not os.path.isfile(tok_file):
            raise SystemExit(f"{model_dir} has no tokenizer.json: the server needs the tokenizer beside the model")
        self.tokenizer = PreTrainedTokenizerFast(tokenizer_file=tok_file)
        cfg_file = os.path.join(model_dir, "tokenizer_config.json")
        self.chat_template = None
        if os.path.isfile(cfg_file):
            with open(cfg_file, encoding="utf-8") as f:
                self.chat_template = json.load(f).get("chat_template")
        if chat_template:
            self.chat_template = chat_template
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.max_len = getattr(self.model.config, "max_position_embeddings", None) or getattr(self.model.config, "n_positions", None) or 2048
        eos = getattr(self.model.config, "eos_token_id", None)
        vocab = self.model.get_input_embeddings().num_embeddings
        self.eos_ids = {e for e in (eos if isinstance(eos, list) else [eos]) if isinstance(e, int) and 0 <= e < vocab}
        for special in ("<|endoftext|>", "<|im_end|>", "</s>", "<|eot_id|>"):
            tid = self.tokenizer.convert_tokens_to_ids(special)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and 0 <= tid < vocab:
                self.eos_ids.add(tid)
        self.lock = threading.Lock()

    def chat_prompt(self, messages: list) -> str:
        if self.chat_template:
            self.tokenizer.chat_template = self.chat_template
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # ChatML, the most common template, when the model ships none.
        parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
        return "".join(parts) + "<|im_start|>assistant\n"

    def encode(self, text: str) -> list:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def token_text(self, tid: int) -> str:
        return self.tokenizer.decode([tid])

    def generate(self, prompt_ids: list, max_tokens: int, temperature: float, top_p: float, seed: int | None, top_logprobs: int):
        """Yields `(token_id, logprob, top: [(token_id, logprob)])` for each generated token."""
        torch = self.torch
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
        room = self.max_len - len(prompt_ids)
        if room <= 0:
            raise ApiError(400, f"the prompt has {len(prompt_ids)} tokens; the model's context is {self.max_len}", param="prompt", code="context_length_exceeded")
        max_tokens = min(max_tokens, room)
        with torch.no_grad():
            ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.device)
            out = self.model(input_ids=ids, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()
            for _ in range(max_tokens):
                logp = torch.log_softmax(logits, dim=-1)
                if temperature <= 0:
                    tid = int(torch.argmax(logits))
                else:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    if top_p < 1.0:
                        sp, si = torch.sort(probs, descending=True)
                        keep = torch.cumsum(sp, dim=-1) - sp < top_p
                        probs = torch.zeros_like(probs).scatter(0, si[keep], sp[keep])
                        probs = probs / probs.sum()
                    tid = int(torch.multinomial(probs.cpu(), 1, generator=gen))
                top = []
                if top_logprobs > 0:
                    v, i = torch.topk(logp, min(top_logprobs, logp.shape[-1]))
                    top = list(zip(i.tolist(), v.tolist()))
                yield tid, float(logp[tid]), top
                if tid in self.eos_ids:
                    return
                out = self.model(input_ids=torch.tensor([[tid]], device=self.device), past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[0, -1].float()


def _num(body: dict, key: str, default, lo=None, hi=None, kind=float):
    v = body.get(key, default)
    if v is None:
        v = default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise ApiError(400, f"'{key}' must be a {'integer' if kind is int else 'number'}", param=key)
    v = kind(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ApiError(400, f"'{key}' must be between {lo} and {hi}", param=key)
    return v


def run_generation(engine: Engine, body: dict, prompt_ids: list, chat: bool):
    """Yields events `("token", text, tid, logprob, top)` and finally `("end", finish_reason, n_tokens)`."""
    max_tokens = _num(body, "max_tokens" if "max_completion_tokens" not in body else "max_completion_tokens", 16, 1, 1_000_000, int)
    temperature = _num(body, "temperature", 1.0, 0, 2)
    top_p = _num(body, "top_p", 1.0, 0, 1)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ApiError(400, "'seed' must be an integer", param="seed")
    if chat:
        top_logprobs = _num(body, "top_logprobs", 0, 0, 20, int) if body.get("logprobs") else 0
        want_logprobs = bool(body.get("logprobs"))
    else:
        lp = body.get("logprobs")
        want_logprobs = lp is not None and lp is not False
        top_logprobs = _num(body, "logprobs", 0, 0, 20, int) if want_logprobs else 0
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
        raise ApiError(400, "'stop' must be a string or a list of up to 4 strings", param="stop")
    if (body.get("n") or 1) != 1:
        raise ApiError(400, "only n=1 is supported by the reference server", param="n")
    text = ""
    emitted = 0  # characters of `text` already sent
    n = 0
    finish = "length"
    hold = max((len(s) for s in stop), default=0)
    with engine.lock:
        for tid, logprob, top in engine.generate(prompt_ids, max_tokens, temperature, top_p, seed, top_logprobs):
            n += 1
            if tid in engine.eos_ids:
                finish = "stop"
                break
            piece = engine.token_text(tid)
            text += piece
            hit = min((i for i in (text.find(s, max(0, emitted - hold)) for s in stop) if i >= 0), default=-1)
            if hit >= 0:
                if hit > emitted:
                    yield ("token", text[emitted:hit], tid, logprob, top)
                finish = "stop"
                break
            # Hold back what could be the start of a stop string.
            safe = len(text) - hold if hold else len(text)
            if safe > emitted:
                yield ("token", text[emitted:safe], tid, logprob, top if want_logprobs else None)
                emitted = safe
            elif want_logprobs:
                yield ("token", "", tid, logprob, top)
    if finish == "length" and emitted < len(text):
        yield ("token", text[emitted:], None, None, None)
    yield ("end", finish, n)


def make_handler(engine: Engine):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "nexa-serve/0.1"

        def log_message(self, fmt, *args):  # one line per request on stderr
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

        def send_json(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path in ("/health", "/healthz"):
                return self.send_json(200, {"status": "ok", "model": engine.name})
            if path == "/v1/models":
                return self.send_json(200, {"object": "list", "data": [{"id": engine.name, "object": "model", "created": engine.created, "owned_by": "nexa-forge", "max_model_len": engine.max_len}]})
            return self.send_json(404, ApiError(404, f"no route GET {path}", code="not_found").body())

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    raise ApiError(400, "the body is not valid JSON")
                if not isinstance(body, dict):
                    raise ApiError(400, "the body must be a JSON object")
                model = body.get("model")
                if model is not None and model != engine.name:
                    raise ApiError(404, f"The model `{model}` does not exist; this server serves `{engine.name}`", param="model", code="model_not_found")
                if path == "/v1/completions":
                    return self.completions(body)
                if path == "/v1/chat/completions":
                    return self.chat(body)
                raise ApiError(404, f"no route POST {path}", code="not_found")
            except ApiError as err:
                return self.send_json(err.status, err.body())
            except (BrokenPipeError, ConnectionResetError):
                return None
            except Exception as err:  # noqa: BLE001
                return self.send_json(500, ApiError(500, f"{type(err).__name__}: {err}", type_="server_error").body())

        # ── /v1/completions ──────────────────────────────────────────────────────────────────
        def completions(self, body: dict):
            prompt = body.get("prompt", "")
            if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
                prompt = prompt[0]
            if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
                ids = list(prompt)
                prompt_text = engine.tokenizer.decode(ids)
            elif isinstance(prompt, str):
                ids = engine.encode(prompt)
                prompt_text = prompt
            else:
                raise ApiError(400, "'prompt' must be a string, a list of one string, or a list of token ids", param="prompt")
            if not ids:
                raise ApiError(400, "the prompt is empty", param="prompt")
            rid = "cmpl-" + uuid.uuid4().hex
            created = int(time.time())
            events = run_generation(engine, body, ids, chat=False)
            want_lp = body.get("logprobs") is not None and body.get("logprobs") is not False
            echo = bool(body.get("echo"))

            def lp_block(items):
                return {
                    "tokens": [t for t, _l, _top, _o in items],
                    "token_logprobs": [l for _t, l, _top, _o in items],
                    "top_logprobs": [{engine.token_text(i): v for i, v in top} for _t, _l, top, _o in items],
                    "text_offset": [o for _t, _l, _top, o in items],
                }

            if body.get("stream"):
                self.start_sse()
                offset = len(prompt_text) if echo else 0
                if echo:
                    self.sse({"id": rid, "object": "text_completion", "created": created, "model": engine.name, "choices": [{"index": 0, "text": prompt_text, "logprobs": None, "finish_reason": None}]})
                for ev in events:
                    if ev[0] == "token":
                        _k, piece, tid, lp, top = ev
                        lpb = lp_block([(engine.token_text(tid), lp, top or [], offset)]) if want_lp and tid is not None else None
                        offset += len(piece)
                        self.sse({"id": rid, "object": "text_completion", "created": created, "model": engine.name, "choices": [{"index": 0, "text": piece, "logprobs": lpb, "finish_reason": None}]})
                    else:
                        _k, finish, n = ev
                        chunk = {"id": rid, "object": "text_completion", "created": created, "model": engine.name, "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": finish}]}
                        if (body.get("stream_options") or {}).get("include_usage"):
                            chunk["usage"] = {"prompt_tokens": len(ids), "completion_tokens": n, "total_tokens": len(ids) + n}
                        self.sse(chunk)
                return self.end_sse()
            text, items, finish, n = "", [], "length", 0
            offset = len(prompt_text) if echo else 0
            for ev in events:
                if ev[0] == "token":
                    _k, piece, tid, lp, top = ev
                    if tid is not None and want_lp:
                        items.append((engine.token_text(tid), lp, top or [], offset + len(text)))
                    text += piece
                else:
                    _k, finish, n = ev
            return self.send_json(200, {
                "id": rid, "object": "text_completion", "created": created, "model": engine.name,
                "choices": [{"index": 0, "text": (prompt_text if echo else "") + text, "logprobs": lp_block(items) if want_lp else None, "finish_reason": finish}],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": n, "total_tokens": len(ids) + n},
            })

        # ── /v1/chat/completions ─────────────────────────────────────────────────────────────
        def chat(self, body: dict):
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise ApiError(400, "'messages' must be a non-empty list", param="messages")
            for i, m in enumerate(messages):
                if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                    raise ApiError(400, f"messages[{i}] needs a 'role'", param=f"messages.{i}")
                c = m.get("content")
                if isinstance(c, list):  # content parts: keep the text ones
                    m["content"] = "".join(p.get("text", "") for p in c if isinstance(p, dict) and p.get("type") == "text")
                elif not isinstance(c, str):
                    raise ApiError(400, f"messages[{i}].content must be a string", param=f"messages.{i}.content")
            ids = engine.encode(engine.chat_prompt(messages))
            rid = "chatcmpl-" + uuid.uuid4().hex
            created = int(time.time())
            events = run_generation(engine, body, ids, chat=True)
            want_lp = bool(body.get("logprobs"))

            def lp_entry(tid, lp, top):
                tok = engine.token_text(tid)
                return {"token": tok, "logprob": lp, "bytes": list(tok.encode()), "top_logprobs": [{"token": engine.token_text(i), "logprob": v, "bytes": list(engine.token_text(i).encode())} for i, v in top]}

            if body.get("stream"):
                self.start_sse()
                base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": engine.name}
                self.sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]})
                for ev in events:
                    if ev[0] == "token":
                        _k, piece, tid, lp, top = ev
                        lpb = {"content": [lp_entry(tid, lp, top or [])]} if want_lp and tid is not None else None
                        self.sse({**base, "choices": [{"index": 0, "delta": {"content": piece}, "logprobs": lpb, "finish_reason": None}]})
                    else:
                        _k, finish, n = ev
                        chunk = {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]}
                        if (body.get("stream_options") or {}).get("include_usage"):
                            chunk["usage"] = {"prompt_tokens": len(ids), "completion_tokens": n, "total_tokens": len(ids) + n}
                        self.sse(chunk)
                return self.end_sse()
            text, content_lp, finish, n = "", [], "length", 0
            for ev in events:
                if ev[0] == "token":
                    _k, piece, tid, lp, top = ev
                    if tid is not None and want_lp:
                        content_lp.append(lp_entry(tid, lp, top or []))
                    text += piece
                else:
                    _k, finish, n = ev
            return self.send_json(200, {
                "id": rid, "object": "chat.completion", "created": created, "model": engine.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": {"content": content_lp} if want_lp else None, "finish_reason": finish}],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": n, "total_tokens": len(ids) + n},
            })

        # ── server-sent events ──────────────────────────────────────────────────────────────
        def start_sse(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _chunk(self, data: bytes):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def sse(self, obj: dict):
            self._chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

        def end_sse(self):
            self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="folder with config.json, weights and tokenizer.json")
    p.add_argument("--name", help="model name clients use (default: the folder name)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--chat-template", help="Jinja chat template used instead of the model's (e.g. the messages' text alone, for a base model)")
    args = p.parse_args(argv)
    engine = Engine(args.model, args.name or os.path.basename(os.path.normpath(args.model)), args.device, args.chat_template)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(engine))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"{LISTENING_PREFIX}http://{host}:{port}", flush=True)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
