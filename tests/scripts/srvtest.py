"""Helpers for the server tests: start `m40llm serve` on a free loopback port,
talk HTTP with http.client, parse SSE streams, run `m40llm run` for parity.

Environment (set by CTest): M40LLM_BIN, M40LLM_TESTDATA, M40LLM_BUILD_DIR.
Exit code 77 means "skipped" (data or a dependency missing)."""
import atexit
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
BIN = os.environ.get("M40LLM_BIN", "")
TESTDATA = os.environ.get("M40LLM_TESTDATA", "")
BUILD = os.environ.get("M40LLM_BUILD_DIR", tempfile.gettempdir())

STORIES = os.path.join(TESTDATA, "stories", "stories260K.gguf")
TINY = os.path.join(TESTDATA, "models", "tiny-llama-q8_0.gguf")

_servers = []


def skip(why):
    print("skipped: " + why)
    sys.exit(SKIP)


def need(*paths):
    if not BIN or not os.access(BIN, os.X_OK):
        skip("M40LLM_BIN is not set or not executable")
    for p in paths:
        if not os.path.exists(p):
            skip(p + " is missing")


class Server:
    """A running `m40llm serve` on 127.0.0.1 with --port 0."""

    def __init__(self, model, *args, timeout=120):
        fd, self.log_path = tempfile.mkstemp(prefix="m40llm-serve-", suffix=".log", dir=BUILD)
        self.log = os.fdopen(fd, "w")
        cmd = [BIN, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0"] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        _servers.append(self)
        self.port = None
        t0 = time.time()
        while time.time() - t0 < timeout:
            with open(self.log_path, errors="replace") as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.port:
            raise RuntimeError("server did not start: " + self.log_text())

    def log_text(self):
        if getattr(self, "final_log", None) is not None:
            return self.final_log
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def conn(self, timeout=300):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=False):
        """Returns (status, headers dict (lower-case keys), parsed JSON or bytes)."""
        c = self.conn()
        h = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        if raw or not hdrs.get("content-type", "").startswith("application/json"):
            return r.status, hdrs, data
        return r.status, hdrs, json.loads(data)

    def post(self, path, body, headers=None):
        return self.request("POST", path, body, headers)

    def stream(self, path, body, headers=None):
        """POSTs with stream=true; returns (status, list of decoded events, raw lines).
        The final 'data: [DONE]' is returned as the string '[DONE]'."""
        c = self.conn()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request("POST", path, body=json.dumps(body), headers=h)
        r = c.getresponse()
        if r.status != 200:
            data = r.read()
            c.close()
            return r.status, json.loads(data), []
        assert r.getheader("Content-Type", "").startswith("text/event-stream"), r.getheaders()
        events, lines = [], []
        for raw in r:
            line = raw.decode("utf-8").rstrip("\r\n")
            lines.append(line)
            if line.startswith("data: "):
                d = line[6:]
                events.append(d if d == "[DONE]" else json.loads(d))
        c.close()
        return r.status, events, lines

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.final_log = self.log_text()
        if self.proc.returncode == 0:
            os.unlink(self.log_path)  # kept only when something went wrong
        return self.proc.returncode

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def _cleanup():
    for s in _servers:
        if s.proc.poll() is None:
            s.proc.kill()


atexit.register(_cleanup)


def run_cli(model, prompt, n, *args):
    """Text that `m40llm run` generates (stdout, exact)."""
    # -t 1 as the test servers use: the CPU backend's sums depend on the thread
    # count, which can flip greedy near-ties
    cmd = [BIN, "run", "-m", model, "-p", prompt, "-n", str(n), "-t", "1"] + list(args)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("m40llm run failed: " + r.stderr.decode(errors="replace"))
    return r.stdout.decode("utf-8")


def stream_text(events, kind="chat"):
    """Concatenated text of a stream's events."""
    out = []
    for e in events:
        if e == "[DONE]" or "error" in e:
            continue
        if kind == "generate":
            out.append(e.get("text", ""))
        else:
            for ch in e.get("choices", []):
                if kind == "chat":
                    out.append(ch.get("delta", {}).get("content") or "")
                else:
                    out.append(ch.get("text") or "")
    return "".join(out)


class Checks:
    """Collects failures so one run reports all of them."""

    def __init__(self):
        self.failed = 0
        self.n = 0

    def check(self, cond, what, detail=""):
        self.n += 1
        if cond:
            print("ok   " + what)
        else:
            self.failed += 1
            print("FAIL " + what + (": " + str(detail)[:2000] if detail != "" else ""))
        return cond

    def finish(self):
        print("%d checks, %d failed" % (self.n, self.failed))
        sys.exit(1 if self.failed else 0)
