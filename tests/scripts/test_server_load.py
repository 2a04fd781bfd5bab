"""Bounded load test of `m40llm serve` on loopback (run by test_server_load.sh).

32 concurrent streaming clients (M40LLM_LOADTEST_CLIENTS) for
M40LLM_LOADTEST_SECONDS (default 15) against the synthetic tiny-llama model
on the CPU. Each request is one of a fixed set of (endpoint, prompt, seed,
max_tokens) cases whose single-request reply was recorded first: every
streamed reply must equal it (no lost, truncated or mixed-up text), there
must be no errors, and the server's RSS after the run must stay close to
its RSS after a warm-up phase. Prints requests/s and aggregate tokens/s."""
import http.client
import json
import os
import random
import threading
import time

import srvtest as T

T.need(T.TINY)
ck = T.Checks()
check = ck.check

SECONDS = float(os.environ.get("M40LLM_LOADTEST_SECONDS", "15"))
CLIENTS = int(os.environ.get("M40LLM_LOADTEST_CLIENTS", "32"))
PARALLEL = os.environ.get("M40LLM_LOADTEST_PARALLEL", "8")
MODEL = os.environ.get("M40LLM_LOADTEST_MODEL", T.TINY)

# ASan's quarantine would otherwise grow the RSS by up to 256 MB
os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"
THREADS = os.environ.get("M40LLM_LOADTEST_THREADS", "1")  # leaves a core to the clients
srv = T.Server(MODEL, "-np", PARALLEL, "--queue", "256", "-c", "512", "-t", THREADS)

words = ["Once upon a time", "Tom and his dog", "Lily went to the park", "The sun",
         "A big red ball", "Sam was sad", "One day", "The cat and the bird"]
rnd = random.Random(1234)
cases = []
for i in range(16):
    kind = ("/generate", "/v1/completions", "/v1/chat/completions")[i % 3]
    body = {"max_tokens": rnd.randint(16, 48), "seed": 1000 + i,
            "temperature": 0.0 if i % 4 == 0 else 0.9}
    if kind.endswith("chat/completions"):
        body["messages"] = [{"role": "user", "content": words[i % len(words)]}]
    else:
        body["prompt"] = words[i % len(words)] + (" and" * (i % 5))
    cases.append((kind, body))


def text_of(kind, j):
    if kind == "/generate":
        return j["text"]
    if kind == "/v1/completions":
        return j["choices"][0]["text"]
    return j["choices"][0]["message"]["content"]


refs = []
for kind, body in cases:
    st, h, j = srv.post(kind, body)
    assert st == 200, (kind, body, j)
    refs.append((text_of(kind, j), j["usage"]["completion_tokens"] if "usage" in j else None))

stats = {"requests": 0, "tokens": 0, "errors": 0, "mismatch": 0}
lock = threading.Lock()
errors = []
stop_at = time.time() + SECONDS
warm_rss = [0]


def client(ci):
    r = random.Random(ci)
    conn = None
    while time.time() < stop_at:
        idx = r.randrange(len(cases))
        kind, body = cases[idx]
        b = dict(body, stream=True)
        if kind != "/generate":
            b["stream_options"] = {"include_usage": True}
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
            conn.request("POST", kind, body=json.dumps(b),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError("status %d: %s" % (resp.status, resp.read()[:300]))
            events = []
            for raw in resp:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("data: "):
                    d = line[6:]
                    events.append(d if d == "[DONE]" else json.loads(d))
            k = "generate" if kind == "/generate" else "chat" if "chat" in kind else "completion"
            text = T.stream_text(events, k)
            n_tok = None
            for e in events:
                if isinstance(e, dict) and e.get("usage"):
                    n_tok = e["usage"]["completion_tokens"]
            ok = events and events[-1] == "[DONE]" and text == refs[idx][0] and (
                refs[idx][1] is None or n_tok == refs[idx][1])
            with lock:
                stats["requests"] += 1
                stats["tokens"] += n_tok or 0
                if not ok:
                    stats["mismatch"] += 1
                    errors.append(("mismatch", kind, body, text, refs[idx][0]))
        except Exception as ex:  # noqa: BLE001 - any failure counts
            with lock:
                stats["errors"] += 1
                errors.append(("error", kind, repr(ex)))
            if conn:
                conn.close()
            conn = None
    if conn:
        conn.close()


def sampler():
    time.sleep(min(5.0, SECONDS * 0.25))
    warm_rss[0] = srv.rss_kb()


t0 = time.time()
threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
ts = threading.Thread(target=sampler)
ts.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
ts.join()
dt = time.time() - t0
end_rss = srv.rss_kb()
st, h, body = srv.request("GET", "/metrics")
print("load: %d clients, %.1f s, --parallel %s -t %s: %d requests (%.2f req/s), %d tokens streamed "
      "(%.1f t/s aggregate), %d errors, %d mismatches, RSS %.1f MB after warm-up -> %.1f MB "
      "at end" % (CLIENTS, dt, PARALLEL, THREADS, stats["requests"], stats["requests"] / dt,
                  stats["tokens"], stats["tokens"] / dt, stats["errors"], stats["mismatch"],
                  warm_rss[0] / 1024, end_rss / 1024))
mt = {}
for line in body.decode().splitlines():
    if line and not line.startswith("#"):
        mt[line.split()[0]] = float(line.split()[1])
steps = mt.get("m40llm_decode_steps_total", 0)
print("server: %.1f s in decode steps (%d steps, mean batch %.1f, %.2f ms/step), %.1f s in %d "
      "prefills" % (mt.get("m40llm_decode_seconds_total", 0), steps,
                    mt.get("m40llm_decode_step_sequences_total", 0) / max(steps, 1),
                    1e3 * mt.get("m40llm_decode_seconds_total", 0) / max(steps, 1),
                    mt.get("m40llm_prompt_seconds_total", 0),
                    mt.get("m40llm_prefill_calls_total", 0)))
for e in errors[:5]:
    print("  ", e)
check(stats["requests"] >= CLIENTS, "requests completed", stats)
check(stats["errors"] == 0, "no errors", errors[:5])
check(stats["mismatch"] == 0, "every reply equals its single-request reply", errors[:5])
check(end_rss <= warm_rss[0] * 1.25 + 16 * 1024, "RSS stable (%d kB -> %d kB)" %
      (warm_rss[0], end_rss))
st, h, j = srv.request("GET", "/health")
check(st == 200 and j["slots_processing"] == 0 and j["queue"] == 0, "idle after the run", j)
check(srv.stop() == 0, "clean shutdown", srv.log_text()[-3000:])
ck.finish()
