#!/usr/bin/env python3
"""A fake OpenAI-compatible upstream on loopback, for the gateway tests.

Endpoints: POST /v1/chat/completions and POST /v1/completions (streamed as
server-sent events or not), GET /v1/models, GET /health; with --api-key every
/v1 request needs "Authorization: Bearer KEY" (401 otherwise).

Deterministic answers: the completion of a request is a fixed word sequence
derived from a SHA-256 of the conversation (role and text of each message,
without a trailing assistant prefix; or the prompt). Word i is the same for
every length, so answers of different lengths share their beginnings. A
response is max_tokens (or max_completion_tokens) words long, 16 without
either; one word per streamed chunk ("w0", " w1", " w2", ...), and every word
counts as one completion token. finish_reason is "length" when the request set
a maximum, "stop" otherwise.

Continuation (DeepSeek's prefix convention): when the last message is
{"role": "assistant", "content": P, "prefix": true} and P is a prefix of the
conversation's word sequence, the answer is what follows P: the rest of a word
P ends inside (one token), then whole words, max_tokens tokens in all. So an
answer cut after k tokens and continued elsewhere with max_tokens - k joins
into exactly the uninterrupted answer. A prefix that is not part of the
sequence gets a fresh sequence derived from the whole message list.

--reasoning (R1-style) makes the first 4 tokens of every chat answer reasoning
words (delta.reasoning_content, or message.reasoning_content), then the content
words; reasoning tokens count against max_tokens like any other. A continuation
whose prefix message has an empty content and a "reasoning_content" that is a
prefix of the reasoning words continues inside the reasoning; one with content
continues the content (its reasoning_content is not checked). Both upstreams of
a hand-over must run with the same --reasoning.

Behaviours, from flags at start or POST /_control {...} at run time (null or
absent turns one off; "times": N applies fail/drop/stall to the next N
generation requests only, then they turn off):
  delay_ms      sleep before each streamed chunk
  fail_status   answer with this HTTP status and an OpenAI error body, before anything
  drop_after    send k tokens, then reset the connection (no [DONE]; a
                non-streamed answer is cut half-way through its body)
  stall_after   send k tokens, then nothing while keeping the socket open
                (until the client leaves or the server stops)
  p_fail, p_drop, p_stall, seed
                random variants: per request, fail (with fail_status or 503),
                drop or stall after a random token count, with these
                probabilities, from a seeded generator
  reasoning     as --reasoning
GET /_received lists every /v1 and /health request ({method, path, headers
without the authorization value, body}); POST /_reset clears the list and
restores the start-up behaviour. POST /_control answers the new behaviour.

Prints the bound port alone on the first line of stdout (use --port 0).
Standard library only.
"""
import argparse
import hashlib
import json
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber basil cedar dune ember fern "
    "grove harbor iris jade kelp lotus maple nectar olive pearl quartz river sage thyme umber violet "
    "willow yarrow zephyr acorn birch clover daisy elm flint garnet hazel ivy juniper kestrel linden"
).split()
DEFAULT_TOKENS = 16
REASONING_TOKENS = 4
CREATED = 1764150000
BEHAVIOUR_KEYS = ("delay_ms", "fail_status", "drop_after", "stall_after", "p_fail", "p_drop", "p_stall",
                  "seed", "reasoning", "times")

lock = threading.Lock()
stopping = threading.Event()
state = {"received": [], "behaviour": {}, "initial": {}, "rng": random.Random(0), "counter": 0}


class BadRequest(Exception):
    pass


def word(seed, i):
    digest = hashlib.sha256(f"{seed}:{i}".encode()).digest()
    return WORDS[int.from_bytes(digest[:4], "big") % len(WORDS)]


def chunk_text(seed, i):
    return word(seed, i) if i == 0 else " " + word(seed, i)


def seed_of(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def message_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""


def split_prefix(messages):
    """(conversation messages, (content, reasoning) of an assistant prefix or None)."""
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant" \
            and messages[-1].get("prefix") is True:
        last = messages[-1]
        reasoning = last.get("reasoning_content")
        return messages[:-1], (message_text(last.get("content")),
                               reasoning if isinstance(reasoning, str) else "")
    return messages, None


def continuation_start(chunk, n_chunks, prefix):
    """(index of the first chunk to send, characters of it already sent) when
    prefix is a prefix of chunk(0) + chunk(1) + ... (at most n_chunks chunks,
    None: unbounded), else None."""
    pos, i = 0, 0
    # The prefix can only cover len(prefix) chunks: each is at least one character.
    while pos < len(prefix):
        if n_chunks is not None and i >= n_chunks:
            return None
        c = chunk(i)
        rest = prefix[pos:]
        if rest.startswith(c):
            pos += len(c)
            i += 1
        elif c.startswith(rest):
            return i, len(rest)
        else:
            return None
    return i, 0


def plan_answer(body, chat):
    """(tokens of the answer as (field, text) pairs, prompt_tokens, limited)."""
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    limited = limit is not None
    if limit is None:
        limit = DEFAULT_TOKENS
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1 or limit > 100000:
        raise BadRequest("max_tokens must be an integer from 1 to 100000")
    prefix = None
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty array")
        conversation, prefix = split_prefix(messages)
        convo = [{"role": m.get("role") if isinstance(m, dict) else None,
                  "content": message_text(m.get("content")) if isinstance(m, dict) else ""}
                 for m in conversation]
        prompt_words = sum(len(m["content"].split()) for m in convo)
        seed = seed_of(convo)
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, (str, list)):
            raise BadRequest("prompt must be a string or an array")
        prompt_words = len(prompt.split()) if isinstance(prompt, str) else len(prompt)
        seed = seed_of(prompt)
    with lock:
        n_reasoning = REASONING_TOKENS if chat and state["behaviour"].get("reasoning") else 0

    def token(i):
        if i < n_reasoning:
            return "reasoning_content", chunk_text(seed + ":reasoning", i)
        return "content", chunk_text(seed, i - n_reasoning)

    start, skip = 0, 0
    if prefix is not None:
        content, reasoning = prefix
        if content:
            found = continuation_start(lambda i: chunk_text(seed, i), None, content)
            if found:
                found = (found[0] + n_reasoning, found[1])
        elif n_reasoning:
            found = continuation_start(lambda i: chunk_text(seed + ":reasoning", i), n_reasoning, reasoning)
        else:
            found = (0, 0)
        if found is None:
            seed = seed_of(messages)
        else:
            start, skip = found
    tokens = []
    for i in range(start, start + limit):
        field, text = token(i)
        tokens.append((field, text[skip:] if i == start else text))
    return tokens, max(prompt_words, 1), limited


def draw_fault():
    """The fault for the next generation request: (kind, k) or None; consumes 'times'."""
    with lock:
        b = state["behaviour"]
        rng = state["rng"]
        fault = None
        if b.get("fail_status"):
            fault = ("fail", b["fail_status"])
        elif b.get("drop_after") is not None:
            fault = ("drop", b["drop_after"])
        elif b.get("stall_after") is not None:
            fault = ("stall", b["stall_after"])
        else:
            r = rng.random()
            if r < (b.get("p_fail") or 0):
                fault = ("fail", 503)
            elif r < (b.get("p_fail") or 0) + (b.get("p_drop") or 0):
                fault = ("drop", rng.randrange(0, 8))
            elif r < (b.get("p_fail") or 0) + (b.get("p_drop") or 0) + (b.get("p_stall") or 0):
                fault = ("stall", rng.randrange(0, 8))
        times = b.get("times")
        if fault is not None and times is not None:
            times -= 1
            b["times"] = times
            if times <= 0:
                for k in ("fail_status", "drop_after", "stall_after", "times"):
                    b[k] = None
        return fault


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1"

    def log_message(self, fmt, *args):
        pass

    # --- plumbing ---------------------------------------------------------
    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, status, message, kind="invalid_request_error"):
        self.send_json(status, {"error": {"message": message, "type": kind, "code": status}})

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_event(self, obj):
        self.write_chunk(b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n")

    def reset_connection(self):
        # SO_LINGER 0: close() sends a RST, the client sees the stream die.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def stall(self):
        # Keep the socket open and silent until the client goes away.
        deadline = time.monotonic() + 600
        while not stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
        self.close_connection = True

    def record(self, body):
        headers = {k.lower(): ("(present)" if k.lower() == "authorization" else v) for k, v in self.headers.items()}
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        with lock:
            state["received"].append({"method": self.command, "path": self.path, "headers": headers,
                                      "body": parsed, "time": time.time()})

    def authorized(self):
        key = state["initial"].get("api_key")
        if not key or self.headers.get("Authorization") == "Bearer " + key:
            return True
        self.send_error_json(401, "Incorrect API key provided", "authentication_error")
        return False

    # --- routes -----------------------------------------------------------
    def do_GET(self):
        if self.path == "/_received":
            with lock:
                return self.send_json(200, state["received"])
        if self.path in ("/health", "/v1/models"):
            self.record(b"")
            if self.path == "/health":
                return self.send_json(200, {"status": "ok"})
            if not self.authorized():
                return None
            models = state["initial"].get("models") or ["fake-model"]
            return self.send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "fake-upstream"} for m in models]})
        return self.send_error_json(404, "no route " + self.path)

    def do_POST(self):
        body = self.read_body()
        if self.path == "/_control":
            return self.control(body)
        if self.path == "/_reset":
            with lock:
                state["received"].clear()
                state["behaviour"] = dict(state["initial"]["behaviour"])
                state["rng"] = random.Random(state["behaviour"].get("seed") or 0)
            return self.send_json(200, {"ok": True})
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            self.record(body)
            return self.send_error_json(404, "no route " + self.path)
        self.record(body)
        if not self.authorized():
            return None
        try:
            req = json.loads(body)
            if not isinstance(req, dict):
                raise BadRequest("the body must be a JSON object")
            models = state["initial"].get("models")
            if models and req.get("model") not in models:
                return self.send_error_json(404, f"The model '{req.get('model')}' does not exist", "not_found_error")
            chat = self.path == "/v1/chat/completions"
            tokens, prompt_tokens, limited = plan_answer(req, chat)
        except (ValueError, BadRequest) as e:
            return self.send_error_json(400, str(e))
        fault = draw_fault()
        if fault and fault[0] == "fail":
            return self.send_error_json(fault[1], "upstream failure injected by the test", "server_error")
        with lock:
            state["counter"] += 1
            rid = f"fake-{state['counter']}"
            delay = (state["behaviour"].get("delay_ms") or 0) / 1000.0
        answer = {"id": rid, "model": req.get("model", "fake-model"), "tokens": tokens,
                  "prompt_tokens": prompt_tokens, "finish": "length" if limited else "stop", "chat": chat}
        if req.get("stream"):
            include_usage = isinstance(req.get("stream_options"), dict) and \
                req["stream_options"].get("include_usage") is True
            return self.stream(answer, fault, delay, include_usage)
        return self.whole(answer, fault, delay)

    def control(self, body):
        try:
            update = json.loads(body or b"{}")
            if not isinstance(update, dict) or any(k not in BEHAVIOUR_KEYS for k in update):
                raise ValueError("keys: " + ", ".join(BEHAVIOUR_KEYS))
        except ValueError as e:
            return self.send_error_json(400, "bad control: " + str(e))
        with lock:
            state["behaviour"].update(update)
            if "seed" in update:
                state["rng"] = random.Random(update["seed"] or 0)
            current = dict(state["behaviour"])
        return self.send_json(200, current)

    # --- answers ----------------------------------------------------------
    def usage(self, answer):
        n = len(answer["tokens"])
        return {"prompt_tokens": answer["prompt_tokens"], "completion_tokens": n,
                "total_tokens": answer["prompt_tokens"] + n}

    def frame(self, answer, choice):
        return {"id": answer["id"], "object": "chat.completion.chunk" if answer["chat"] else "text_completion",
                "created": CREATED, "model": answer["model"], "choices": [choice]}

    def stream(self, answer, fault, delay, include_usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chat = answer["chat"]
        if chat:
            self.send_event(self.frame(answer, {"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}))
        for sent, (field, text) in enumerate(answer["tokens"]):
            if fault and sent == fault[1]:
                return self.reset_connection() if fault[0] == "drop" else self.stall()
            if delay:
                time.sleep(delay)
            if chat:
                choice = {"index": 0, "delta": {field: text}, "finish_reason": None}
            else:
                choice = {"index": 0, "text": text, "finish_reason": None}
            self.send_event(self.frame(answer, choice))
        if fault:
            return self.reset_connection() if fault[0] == "drop" else self.stall()
        last = {"index": 0, "delta": {}, "finish_reason": answer["finish"]} if chat else \
            {"index": 0, "text": "", "finish_reason": answer["finish"]}
        self.send_event(self.frame(answer, last))
        if include_usage:
            final = self.frame(answer, None)
            final["choices"] = []
            final["usage"] = self.usage(answer)
            self.send_event(final)
        self.send_event(b"[DONE]")
        self.write_chunk(b"")
        return None

    def whole(self, answer, fault, delay):
        if delay:
            time.sleep(delay * len(answer["tokens"]))
        text = "".join(t for field, t in answer["tokens"] if field == "content")
        reasoning = "".join(t for field, t in answer["tokens"] if field == "reasoning_content")
        if answer["chat"]:
            message = {"role": "assistant", "content": text}
            if reasoning:
                message["reasoning_content"] = reasoning
            choice = {"index": 0, "message": message, "finish_reason": answer["finish"]}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": answer["finish"]}
            obj = "text_completion"
        data = json.dumps({"id": answer["id"], "object": obj, "created": CREATED, "model": answer["model"],
                           "choices": [choice],
                           "usage": self.usage(answer)}).encode()
        if fault and fault[0] == "stall":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.stall()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault and fault[0] == "drop":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            return self.reset_connection()
        self.wfile.write(data)
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="", help="require Authorization: Bearer KEY on /v1")
    parser.add_argument("--model", action="append", default=[], help="served model (repeatable; default: any)")
    parser.add_argument("--reasoning", action="store_true", help="emit reasoning_content words first")
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--fail-status", type=int, default=None)
    parser.add_argument("--drop-after", type=int, default=None)
    parser.add_argument("--stall-after", type=int, default=None)
    parser.add_argument("--p-fail", type=float, default=0)
    parser.add_argument("--p-drop", type=float, default=0)
    parser.add_argument("--p-stall", type=float, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    behaviour = {"delay_ms": args.delay_ms, "fail_status": args.fail_status, "drop_after": args.drop_after,
                 "stall_after": args.stall_after, "p_fail": args.p_fail, "p_drop": args.p_drop,
                 "p_stall": args.p_stall, "seed": args.seed, "reasoning": args.reasoning, "times": None}
    state["initial"] = {"behaviour": behaviour, "api_key": args.api_key, "models": args.model}
    state["behaviour"] = dict(behaviour)
    state["rng"] = random.Random(args.seed)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(server.server_address[1], flush=True)

    def stop(signum, frame):
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
