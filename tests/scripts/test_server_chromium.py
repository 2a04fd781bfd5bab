"""Headless Chromium drives the chat page served at / (run by
test_server_chromium.sh): it types a question into the textarea, clicks Send
and reads the streamed reply from the DOM, which must equal the reply of
/v1/chat/completions for the same (greedy) settings.

Chromium is controlled through the DevTools protocol over
--remote-debugging-pipe (JSON messages separated by NUL on fds 3/4), which
needs nothing beyond the Python standard library."""
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import srvtest as T

T.need(T.STORIES)
browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
    "google-chrome")
if not browser:
    T.skip("chromium is not installed (apt-get install chromium)")
ck = T.Checks()
check = ck.check

srv = T.Server(T.STORIES, "--chat-template", "chatml", "-np", "2", "-c", "512", "-t", "1")
QUESTION = "Hello, who are you?"
st, h, j = srv.post("/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}],
                                             "max_tokens": 40, "temperature": 0})
expected = j["choices"][0]["message"]["content"]


class Cdp:
    def __init__(self):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="m40llm-chromium-", dir=T.BUILD)

        def fds():  # chromium reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
             "--disable-extensions", "--disable-dev-shm-usage", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, close_fds=False)  # our pipe ends are close-on-exec
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        t0 = time.time()
        while time.time() - t0 < timeout:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("id") == self.next_id:
                    if "error" in m:
                        raise RuntimeError("%s: %s" % (method, m["error"]))
                    return m.get("result", {})
            if not select.select([self.from_chrome], [], [], 1.0)[0]:
                continue
            d = os.read(self.from_chrome, 65536)
            if not d:
                raise RuntimeError("chromium closed the pipe")
            self.buf += d
        raise RuntimeError(method + " timed out")

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        return r.get("result", {}).get("value")

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:  # noqa: BLE001 - it may already be gone
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


cdp = Cdp()
try:
    url = "http://127.0.0.1:%d/?max_tokens=40&temperature=0" % srv.port
    target = cdp.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
    cdp.session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                           session=False)["sessionId"]
    cdp.call("Page.enable")
    cdp.call("Runtime.enable")
    cdp.call("Page.navigate", {"url": url})
    t0 = time.time()
    while time.time() - t0 < 30 and cdp.eval("document.readyState") != "complete":
        time.sleep(0.1)
    check(cdp.eval("document.title") == "m40llm chat", "the page loads")
    cdp.eval("document.getElementById('q').focus()")
    cdp.call("Input.insertText", {"text": QUESTION})
    check(cdp.eval("document.getElementById('q').value") == QUESTION, "the question is typed")
    for typ in ("keyDown", "keyUp"):
        cdp.call("Input.dispatchKeyEvent", {"type": typ, "key": "Enter", "code": "Enter",
                                            "windowsVirtualKeyCode": 13, "text": "\r"})
    status, seen_partial = "", False
    t0 = time.time()
    while time.time() - t0 < 60:
        status = cdp.eval("document.getElementById('status').textContent") or ""
        partial = cdp.eval("(document.querySelector('.msg.assistant') || {}).textContent")
        if status.startswith("generating") and partial:
            seen_partial = True
        if status.startswith("done") or status.startswith("error"):
            break
        time.sleep(0.02)
    reply = cdp.eval("(document.querySelector('.msg.assistant') || {}).textContent")
    user = cdp.eval("(document.querySelector('.msg.user') || {}).textContent")
    check(status.startswith("done"), "the reply completes", status)
    check(user == QUESTION, "the question is shown", user)
    check(reply == expected, "the streamed reply in the page == /v1/chat/completions",
          (reply, expected))
    check("generated tokens" in status, "the page shows usage from the stream", status)
    print("note: partial text seen while streaming: %s" % seen_partial)
finally:
    cdp.close()
check(srv.stop() == 0, "clean shutdown", srv.log_text()[-3000:])
ck.finish()
