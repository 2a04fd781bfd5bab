"""Functional tests of `m40llm serve` (run by test_server.sh).

Parity with `m40llm run` (greedy and seeded), streaming vs non-streaming,
/generate, /v1/completions, /v1/chat/completions, stop strings, usage,
logprobs, tokenize/detokenize, every input error, CORS, metrics, the page,
API key, 413/503, client disconnects, concurrent requests, clean shutdown."""
import json
import os
import socket
import threading
import time

import srvtest as T

T.need(T.STORIES, T.TINY)
ck = T.Checks()
check = ck.check

srv = T.Server(T.STORIES, "--chat-template", "chatml", "-np", "3", "-c", "256", "-t", "1",
               "--prefill-chunk", "8")  # prompts over 8 tokens prefill in slices
P1 = "Once upon a time"

# ------------------------------------------------------------------ basics
st, h, j = srv.request("GET", "/health")
check(st == 200 and j["status"] == "ok" and j["slots_total"] == 3, "GET /health", j)
st, h, j = srv.request("GET", "/v1/models")
check(st == 200 and j["data"][0]["id"] == "stories260K.gguf", "GET /v1/models", j)
st, h, body = srv.request("GET", "/")
check(st == 200 and h["content-type"].startswith("text/html") and b"v1/chat/completions" in body,
      "GET / serves the chat page")

# ------------------------------------------------------------------ /generate vs m40llm run
ref = T.run_cli(T.STORIES, P1, 40, "--temp", "0", "-c", "256")
st, h, j = srv.post("/generate", {"prompt": P1, "max_tokens": 40, "temperature": 0})
check(st == 200 and j["text"] == ref, "/generate greedy == m40llm run", (j, ref))
check(j.get("finish_reason") == "length" and j["usage"]["completion_tokens"] == 40
      and j["usage"]["prompt_tokens"] == 5, "/generate usage and finish_reason", j)
check(h.get("access-control-allow-origin") == "*", "CORS header on responses", h)

st, ev, _ = srv.stream("/generate", {"prompt": P1, "max_tokens": 40, "temperature": 0,
                                     "stream": True})
check(st == 200 and T.stream_text(ev, "generate") == ref, "/generate stream == non-stream",
      (ev, ref))
check(ev[-1] == "[DONE]" and ev[-2].get("done") is True and ev[-2]["usage"]["completion_tokens"]
      == 40, "/generate stream ends with done + usage + [DONE]", ev[-2:])

ref_s = T.run_cli(T.STORIES, P1, 40, "--temp", "0.8", "--seed", "42", "-c", "256")
st, h, j = srv.post("/generate", {"prompt": P1, "max_tokens": 40, "temperature": 0.8,
                                  "seed": 42})
check(st == 200 and j["text"] == ref_s, "/generate seeded sampling == m40llm run --seed 42",
      (j, ref_s))
st, h, j2 = srv.post("/generate", {"prompt": P1, "max_tokens": 40, "temperature": 0.8,
                                   "seed": 42})
check(j2["text"] == j["text"], "same seed, same text")

# ------------------------------------------------------------------ /v1/completions
st, h, j = srv.post("/v1/completions", {"model": "stories260K.gguf", "prompt": P1,
                                        "max_tokens": 40, "temperature": 0, "logprobs": 1})
check(st == 200 and j["object"] == "text_completion" and j["choices"][0]["text"] == ref,
      "/v1/completions greedy == m40llm run", j)
lp = j["choices"][0]["logprobs"]
check(lp and len(lp["tokens"]) == len(lp["token_logprobs"]) > 0
      and "".join(lp["tokens"]) == ref and all(x <= 0 for x in lp["token_logprobs"]),
      "/v1/completions logprobs cover the text", lp)
check(j["usage"] == {"prompt_tokens": 5, "completion_tokens": 40, "total_tokens": 45},
      "/v1/completions usage", j.get("usage"))
st, ev, _ = srv.stream("/v1/completions", {"prompt": P1, "max_tokens": 40, "temperature": 0,
                                           "stream": True,
                                           "stream_options": {"include_usage": True}})
check(T.stream_text(ev, "completion") == ref, "/v1/completions stream == non-stream")
check(ev[-1] == "[DONE]" and ev[-2]["choices"] == [] and ev[-2]["usage"]["total_tokens"] == 45
      and ev[-3]["choices"][0]["finish_reason"] == "length",
      "/v1/completions stream: finish chunk, usage chunk, [DONE]", ev[-3:])
st, h, j = srv.post("/v1/completions", {"prompt": [1, 403, 407, 261, 378], "max_tokens": 40,
                                        "temperature": 0})
check(st == 200 and j["choices"][0]["text"] == ref, "/v1/completions with token-id prompt", j)

# ------------------------------------------------------------------ chat
Q = "Hello"
ref_c = T.run_cli(T.STORIES, Q, 30, "--chat", "--chat-template", "chatml", "--temp", "0",
                  "-c", "256")
msgs = [{"role": "user", "content": Q}]
st, h, j = srv.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 30,
                                             "temperature": 0})
check(st == 200 and j["object"] == "chat.completion"
      and j["choices"][0]["message"] == {"role": "assistant", "content": ref_c},
      "/v1/chat/completions == m40llm run --chat", (j, ref_c))
check(j["choices"][0]["finish_reason"] in ("stop", "length") and j["usage"]["completion_tokens"]
      <= 30 and j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"]
      + j["usage"]["completion_tokens"], "chat usage", j["usage"])
st, ev, lines = srv.stream("/v1/chat/completions", {"messages": msgs, "max_tokens": 30,
                                                    "temperature": 0, "stream": True})
check(st == 200 and T.stream_text(ev, "chat") == ref_c, "chat stream == non-stream", ev)
check(ev[0]["choices"][0]["delta"].get("role") == "assistant"
      and all(e["object"] == "chat.completion.chunk" for e in ev[:-1])
      and ev[-2]["choices"][0]["finish_reason"] == j["choices"][0]["finish_reason"]
      and ev[-1] == "[DONE]" and "usage" not in ev[-2], "chat stream framing", ev[-2:])
check(all(line == "" or line.startswith("data: ") or line.startswith(":") for line in lines),
      "SSE lines are data:/comments/blank")
st, h, j = srv.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 5,
                                             "temperature": 0, "logprobs": True})
c = j["choices"][0]["logprobs"]["content"]
check(st == 200 and "".join(x["token"] for x in c) == j["choices"][0]["message"]["content"]
      and all(x["logprob"] <= 0 for x in c), "chat logprobs", j)
st, h, j = srv.post("/v1/chat/completions", {
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": [{"type": "text", "text": "Hel"},
                                              {"type": "text", "text": "lo"}]}],
    "max_tokens": 3, "temperature": 0, "top_k": 10, "min_p": 0.1, "repeat_penalty": 1.1,
    "max_completion_tokens": 4, "user": "x", "frequency_penalty": 0.1})
check(st == 200 and j["usage"]["completion_tokens"] <= 4,
      "chat: content parts, llama.cpp extras, max_completion_tokens", j)

# ------------------------------------------------------------------ stop strings
cut = ref.find(" girl")
check(cut > 0, "reference text contains ' girl'", ref)
for stop in (" girl", [" girl", "zzz"], "irl"):
    st, h, j = srv.post("/generate", {"prompt": P1, "max_tokens": 40, "temperature": 0,
                                      "stop": stop})
    want = ref[:ref.find(stop if isinstance(stop, str) else stop[0])]
    check(st == 200 and j["text"] == want and j["finish_reason"] == "stop",
          "stop %r ends the text before it" % (stop,), (j, want))
    st, ev, _ = srv.stream("/v1/completions", {"prompt": P1, "max_tokens": 40,
                                               "temperature": 0, "stop": stop,
                                               "stream": True})
    check(T.stream_text(ev, "completion") == want
          and ev[-2]["choices"][0]["finish_reason"] == "stop",
          "stop %r in a stream" % (stop,), ev)

# ------------------------------------------------------------------ tokenize
st, h, j = srv.post("/tokenize", {"content": P1, "add_special": True})
check(st == 200 and j["tokens"] == [1, 403, 407, 261, 378], "/tokenize", j)
st, h, j = srv.post("/tokenize", {"content": P1, "with_pieces": True})
check(st == 200 and [p["id"] for p in j["tokens"]] == [403, 407, 261, 378]
      and "".join(p["piece"] for p in j["tokens"]).replace("\u2581", " ").strip() == P1,
      "/tokenize with_pieces", j)
st, h, j = srv.post("/detokenize", {"tokens": [403, 407, 261, 378]})
check(st == 200 and j["content"].strip() == P1, "/detokenize", j)

# ------------------------------------------------------------------ errors


def expect_error(status, method, path, body, what, code=None, headers=None):
    st, h, j = srv.request(method, path, body, headers)
    ok = (st == status and isinstance(j, dict) and isinstance(j.get("error"), dict)
          and isinstance(j["error"].get("message"), str) and j["error"].get("type")
          and "code" in j["error"] and (code is None or j["error"]["code"] == code))
    check(ok, "%d for %s" % (status, what), (st, j))


G, C, CH = "/generate", "/v1/completions", "/v1/chat/completions"
expect_error(400, "POST", G, b'{"prompt": "x",', "malformed JSON")
expect_error(400, "POST", G, b'{"prompt": "x"} trailing', "trailing garbage")
expect_error(400, "POST", G, b'{"prompt": "x", "prompt": "y"}', "duplicate keys")
expect_error(400, "POST", G, b'["prompt"]', "a body that is not an object")
expect_error(400, "POST", G, b'', "an empty body")
expect_error(400, "POST", G, b'{"prompt": "\xff\xfe"}', "invalid UTF-8")
expect_error(400, "POST", G, {"prompt": 5}, "prompt of the wrong type")
expect_error(400, "POST", G, {"max_tokens": 5}, "missing prompt")
expect_error(400, "POST", G, {"prompt": "x", "temperature": "hot"}, "temperature as a string")
expect_error(400, "POST", G, {"prompt": "x", "temperature": -1}, "negative temperature")
expect_error(400, "POST", G, {"prompt": "x", "max_tokens": -5}, "negative max_tokens")
expect_error(400, "POST", G, {"prompt": "x", "max_tokens": 10 ** 15}, "huge max_tokens")
expect_error(400, "POST", G, {"prompt": "x", "max_tokens": 1.5}, "fractional max_tokens")
expect_error(400, "POST", G, {"prompt": "x", "stream": "yes"}, "stream as a string")
expect_error(400, "POST", G, {"prompt": "x", "stop": 3}, "stop of the wrong type")
expect_error(400, "POST", G, {"prompt": "x", "stop": ["a"] * 9}, "too many stop strings")
expect_error(400, "POST", G, {"prompt": "x", "top_p": 2}, "top_p out of range")
expect_error(400, "POST", G, {"prompt": "x", "seed": "abc"}, "seed as a string")
expect_error(400, "POST", G, {"prompt": "Once upon a time " * 100}, "prompt longer than the context",
             "context_length_exceeded")
expect_error(400, "POST", C, {"prompt": "x", "n": 2}, "n=2")
expect_error(400, "POST", C, {"prompt": [1, 99999]}, "token id out of range")
expect_error(400, "POST", C, {"prompt": {"a": 1}}, "prompt as an object")
expect_error(404, "POST", C, {"model": "gpt-4o", "prompt": "x"}, "unknown model",
             "model_not_found")
expect_error(400, "POST", CH, {"prompt": "x"}, "chat without messages")
expect_error(400, "POST", CH, {"messages": []}, "empty messages")
expect_error(400, "POST", CH, {"messages": [{"role": "wizard", "content": "x"}]}, "bad role")
expect_error(400, "POST", CH, {"messages": [{"content": "x"}]}, "message without role")
expect_error(400, "POST", CH, {"messages": [{"role": "user", "content": 7}]}, "content as number")
expect_error(400, "POST", CH, {"messages": "hi"}, "messages as a string")
expect_error(400, "POST", "/tokenize", {"text": "x"}, "tokenize without content")
expect_error(400, "POST", "/detokenize", {"tokens": [1, -1]}, "detokenize negative id")
expect_error(404, "GET", "/nope", None, "unknown path", "not_found")
expect_error(404, "POST", "/v1/embeddings", {"input": "x"}, "unknown endpoint")
expect_error(405, "GET", G, None, "GET on a POST endpoint", "method_not_allowed")
expect_error(405, "DELETE", "/health", None, "DELETE /health", "method_not_allowed")
s = socket.create_connection(("127.0.0.1", srv.port))
s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n{\"prompt\": \"aaaa" % (5 << 20))
resp = b""
while b"\r\n\r\n" not in resp or not resp.endswith(b"}"):
    d = s.recv(4096)
    if not d:
        break
    resp += d
s.close()
check(resp.startswith(b"HTTP/1.1 413") and b'"error"' in resp,
      "413 for a Content-Length over the limit (answered before the body)", resp)


def chunked_post(path, chunks):
    c = srv.conn()
    c.putrequest("POST", path)
    c.putheader("Transfer-Encoding", "chunked")
    c.putheader("Content-Type", "application/json")
    c.endheaders()
    for ch in chunks:
        c.send(b"%x\r\n%s\r\n" % (len(ch), ch))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data)


st, j = chunked_post(G, [b'{"prompt": "'] + [b"a" * 65536] * 80 + [b'"}'])
check(st == 413 and "error" in j, "413 for a chunked body over the limit", (st, j))
st, j = chunked_post(G, [b'{"prompt": "Once upon', b' a time", "max_tokens": 40, ',
                         b'"temperature": 0}'])
check(st == 200 and j["text"] == ref, "chunked upload works", j)

st, h, body = srv.request("OPTIONS", CH, None, {"Origin": "http://example.com",
                                                "Access-Control-Request-Method": "POST"})
check(st == 204 and h.get("access-control-allow-origin") == "*"
      and "POST" in h.get("access-control-allow-methods", "")
      and "authorization" in h.get("access-control-allow-headers", "").lower(),
      "CORS preflight", h)

for raw in (b"GARBAGE\r\n\r\n", b"POST /generate HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 300000 + b"\r\n\r\n",
            b"POST /generate HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"\x00\xff" * 100):
    s = socket.create_connection(("127.0.0.1", srv.port))
    try:
        s.sendall(raw)
        s.settimeout(5)
        s.recv(1000)
    except OSError:
        pass
    s.close()
st, h, j = srv.request("GET", "/health")
check(st == 200, "still serving after the errors and malformed HTTP")
st, h, j = srv.post("/generate", {"prompt": P1, "max_tokens": 40, "temperature": 0})
check(j.get("text") == ref, "generation still correct after the errors")

# ------------------------------------------------------------------ disconnect mid-stream
s = socket.create_connection(("127.0.0.1", srv.port))
body = json.dumps({"prompt": P1, "max_tokens": 250, "ignore_eos": True, "stream": True,
                   "temperature": 0}).encode()
s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
got = b""
while got.count(b"data: ") < 3:
    got += s.recv(4096)
s.close()
t0 = time.time()
idle = False
while time.time() - t0 < 20:
    st, h, j = srv.request("GET", "/health")
    if j["slots_processing"] == 0:
        idle = True
        break
    time.sleep(0.05)
check(idle, "a client that disconnects frees its slot")

s = socket.create_connection(("127.0.0.1", srv.port))
body = json.dumps({"prompt": P1, "max_tokens": 250, "ignore_eos": True}).encode()
s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
t0 = time.time()
while time.time() - t0 < 10 and srv.request("GET", "/health")[2]["slots_processing"] == 0:
    time.sleep(0.01)
s.close()
idle = False
while time.time() - t0 < 20:
    if srv.request("GET", "/health")[2]["slots_processing"] == 0:
        idle = True
        break
    time.sleep(0.05)
log_tail = srv.log_text().splitlines()[-3:]
check(idle and not any("POST /generate 200 tokens 5+250" in x for x in log_tail),
      "a non-streaming client that disconnects is cancelled too", log_tail)
time.sleep(0.2)
check("client gone" in srv.log_text(), "the disconnect is logged")

# ------------------------------------------------------------------ concurrency
prompts = ["Once upon a time", "Tom and his dog", "The sun was", "Lily wanted",
           "One day, a bird", "Sam had a red ball", "The cat", "In the park"]
single = {}
for i, p in enumerate(prompts):
    st, h, j = srv.post("/generate", {"prompt": p, "max_tokens": 30 + 5 * i, "temperature": 0.9,
                                      "seed": 100 + i})
    single[p] = j["text"]
results = {}


def worker(i, p):
    body = {"prompt": p, "max_tokens": 30 + 5 * i, "temperature": 0.9, "seed": 100 + i}
    if i % 2:
        body["stream"] = True
        st, ev, _ = srv.stream("/generate", body)
        results[p] = T.stream_text(ev, "generate")
    else:
        st, h, j = srv.post("/generate", body)
        results[p] = j.get("text")


th = [threading.Thread(target=worker, args=(i, p)) for i, p in enumerate(prompts)]
for t in th:
    t.start()
for t in th:
    t.join()
bad = [p for p in prompts if results.get(p) != single[p]]
check(not bad, "8 concurrent requests on 3 slots == their single-request replies",
      [(p, results.get(p), single[p]) for p in bad])

st, h, body = srv.request("GET", "/metrics")
text = body.decode()
vals = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        k, v = line.split()
        vals[k] = float(v)
check(st == 200 and h["content-type"].startswith("text/plain")
      and vals.get("m40llm_requests_total", 0) >= 20
      and vals.get("m40llm_tokens_generated_total", 0) > 500
      and vals.get("m40llm_prompt_tokens_total", 0) > 50
      and "m40llm_queue_depth" in vals and vals.get("m40llm_slots_total") == 3
      and "# TYPE m40llm_tokens_generated_total counter" in text, "GET /metrics", text)
check(srv.stop() == 0, "clean shutdown on SIGTERM (exit 0, no sanitizer report)",
      srv.log_text()[-3000:])

# ------------------------------------------------------------------ API key, limits, 503
srv2 = T.Server(T.TINY, "--api-key", "s3cret", "-np", "1", "--queue", "1", "--max-body", "4096",
                "-t", "1")
ref_t = T.run_cli(T.TINY, P1, 20, "--temp", "0")
auth = {"Authorization": "Bearer s3cret"}
st, h, j = srv2.post("/v1/completions", {"prompt": P1, "max_tokens": 20, "temperature": 0},
                     auth)
check(st == 200 and j["choices"][0]["text"] == ref_t, "synthetic model: completions == run", j)
st, h, j = srv2.post("/v1/completions", {"prompt": P1})
check(st == 401 and j["error"]["code"] == "invalid_api_key", "401 without a key", j)
st, h, j = srv2.post("/v1/completions", {"prompt": P1}, {"Authorization": "Bearer nope"})
check(st == 401, "401 with a wrong key", j)
st, h, j = srv2.request("GET", "/health")
check(st == 200, "/health needs no key")
st, h, j = srv2.post("/generate", {"prompt": "a" * 5000}, auth)
check(st == 413, "413 over --max-body", j)


def open_stream(srv_, body):
    s = socket.create_connection(("127.0.0.1", srv_.port))
    b = json.dumps(body).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b))
    return s


long_body = {"messages": [{"role": "user", "content": "hi"}], "ignore_eos": True,
             "stream": True}  # runs until the context is full
s1 = open_stream(srv2, long_body)
r1 = s1.recv(100)
t0 = time.time()
while time.time() - t0 < 30 and srv2.request("GET", "/health")[2]["slots_processing"] == 0:
    time.sleep(0.02)  # until it runs
s2 = open_stream(srv2, long_body)
r2 = s2.recv(100)  # queued (the role chunk comes at once)
check(r1.startswith(b"HTTP/1.1 200") and r2.startswith(b"HTTP/1.1 200"), "two streams open",
      (r1, r2))
st, h, j = srv2.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]},
                     auth)
check(st == 503 and j["error"]["code"] == "server_busy", "503 when the queue is full", j)
s1.close()
s2.close()
t0 = time.time()
while time.time() - t0 < 30:
    st, h, j = srv2.request("GET", "/health")
    if j["slots_processing"] == 0 and j["queue"] == 0:
        break
    time.sleep(0.05)
check(j["slots_processing"] == 0 and j["queue"] == 0, "queued and running streams cancelled", j)
st, h, j = srv2.post("/v1/completions", {"prompt": P1, "max_tokens": 20, "temperature": 0},
                     auth)
check(st == 200 and j["choices"][0]["text"] == ref_t, "serving again after 503", j)
check(srv2.stop() == 0, "clean shutdown (server 2)", srv2.log_text()[-3000:])
ck.finish()
