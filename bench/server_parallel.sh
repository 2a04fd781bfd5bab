#!/usr/bin/env bash
# server_parallel.sh - aggregate decode throughput of `m40llm serve` at several
# --parallel levels (does batched decode raise throughput above one stream?).
#
#   bench/server_parallel.sh -m MODEL [options]
#
# For each level P: starts `m40llm serve -m MODEL --parallel P --device D -c CTX
# --port <free port>`, waits for GET /health, warms up (one request alone, then
# one round of P concurrent requests: not measured), then runs exactly P client
# threads that each send K requests back to back (POST /v1/completions, prompt
# given as token ids, greedy, ignore_eos, max_tokens = --tokens). K is chosen
# from the warm-up round so a level takes about --seconds (or fixed with
# --requests). Counts tokens from usage.completion_tokens, reads /metrics
# before and after the measured window (decode steps, mean batch, ms/step),
# stops the server with SIGTERM (must exit 0) and prints a markdown table.
# Greedy replies are compared with the P=1 replies for the same prompt
# (mismatches are counted, not fatal: batched GPU math need not be bitwise
# equal). Exits non-zero on any request error, bad reply or server death.
#
# options:
#   -m, --model FILE      GGUF model (required)
#   --bin PATH            m40llm binary (default: $M40LLM_BIN, else build-gpu/bin/m40llm
#                         in this checkout, else m40llm on PATH)
#   --device D            --device for serve (default auto)
#   --parallel "LIST"     levels (default "1 4 8 16"; the first is the speedup base)
#   --tokens N            max_tokens per request (default 128)
#   --prompt-tokens N     prompt length in tokens (default 32)
#   --prompts N           distinct prompts, cycled (default 8)
#   --seconds S           target measured time per level (default 10)
#   --requests K          fixed requests per client (overrides --seconds)
#   --ctx N               -c for serve (default 2048)
#   -t, --threads N       -t for serve (default: serve's default)
#   --port N|auto         port (default auto: a free one per level)
#   --serve-args "ARGS"   extra serve arguments (e.g. "--prefill-chunk 64")
#   --load-timeout S      seconds to wait for /health after start (default 900)
#   --out FILE            also write the report (markdown) to FILE
#   --log-dir DIR         keep the server logs there (default: a temp dir,
#                         printed on failure)
#
# Environment: when /tmp/m40deps/usr/lib/x86_64-linux-gnu exists (unpacked by
# scripts/test-gpu.sh on the lent GPU machine) it is added to LD_LIBRARY_PATH.
# Needs only bash and python3 (standard library).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "${1:-}" in -h | --help) sed -n '2,41p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

DEPS_LIB=/tmp/m40deps/usr/lib/x86_64-linux-gnu
if [ -d "$DEPS_LIB" ]; then
    case ":${LD_LIBRARY_PATH:-}:" in
    *":$DEPS_LIB:"*) ;;
    *) export LD_LIBRARY_PATH="$DEPS_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
    esac
fi
command -v python3 >/dev/null 2>&1 || { echo "server_parallel.sh: python3 not found" >&2; exit 2; }
export SRVBENCH_ROOT=$ROOT
exec python3 -u - "$@" <<'PYEOF'
import http.client, json, os, random, re, signal, socket, subprocess, sys, tempfile
import threading, time

ROOT = os.environ["SRVBENCH_ROOT"]


def die(msg, code=1):
    sys.stdout.flush()
    print("server_parallel.sh: FAIL: " + msg, file=sys.stderr)
    sys.exit(code)


# ------------------------------------------------------------------ options
def parse_args(argv):
    o = dict(model=None, bin=None, device="auto", parallel="1 4 8 16", tokens=128,
             prompt_tokens=32, prompts=8, seconds=10.0, requests=0, ctx=2048, threads=None,
             port="auto", serve_args="", load_timeout=900.0, out=None, log_dir=None)
    names = {"-m": "model", "--model": "model", "--bin": "bin", "--device": "device",
             "--parallel": "parallel", "--tokens": "tokens", "--prompt-tokens": "prompt_tokens",
             "--prompts": "prompts", "--seconds": "seconds", "--requests": "requests",
             "--ctx": "ctx", "-c": "ctx", "-t": "threads", "--threads": "threads",
             "--port": "port", "--serve-args": "serve_args", "--load-timeout": "load_timeout",
             "--out": "out", "--log-dir": "log_dir"}
    i = 0
    while i < len(argv):
        a = argv[i]
        v = None
        if "=" in a and a.startswith("--"):
            a, v = a.split("=", 1)
        if a not in names:
            die("unknown option %s (--help)" % a, 2)
        if v is None:
            if i + 1 >= len(argv):
                die("option %s needs a value" % a, 2)
            v = argv[i + 1]
            i += 1
        o[names[a]] = v
        i += 1
    if not o["model"]:
        die("-m MODEL is required (--help)", 2)
    if not os.path.isfile(o["model"]):
        die("model file %s not found" % o["model"], 2)
    try:
        for k in ("tokens", "prompt_tokens", "prompts", "requests", "ctx"):
            o[k] = int(o[k])
        for k in ("seconds", "load_timeout"):
            o[k] = float(o[k])
        o["levels"] = [int(x) for x in o["parallel"].replace(",", " ").split()]
    except ValueError as ex:
        die("bad numeric option: %s" % ex, 2)
    if not o["levels"] or min(o["levels"]) < 1:
        die("--parallel needs a list of levels >= 1", 2)
    if o["tokens"] < 1 or o["prompt_tokens"] < 1 or o["prompts"] < 1:
        die("--tokens, --prompt-tokens and --prompts must be >= 1", 2)
    if o["prompt_tokens"] + o["tokens"] > o["ctx"]:
        die("--prompt-tokens + --tokens (%d) exceed --ctx %d"
            % (o["prompt_tokens"] + o["tokens"], o["ctx"]), 2)
    if not o["bin"]:
        cand = [os.environ.get("M40LLM_BIN"), os.path.join(ROOT, "build-gpu", "bin", "m40llm"),
                os.path.join(ROOT, "build-gpu", "m40llm")]
        o["bin"] = next((c for c in cand if c and os.access(c, os.X_OK)), None)
        if not o["bin"]:
            from shutil import which
            o["bin"] = which("m40llm")
        if not o["bin"]:
            die("no m40llm binary found: give --bin PATH", 2)
    if not os.access(o["bin"], os.X_OK):
        die("--bin %s is not executable" % o["bin"], 2)
    return o


# ------------------------------------------------------------------ server
def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, o, parallel, log_dir):
        self.port = free_port() if o["port"] == "auto" else int(o["port"])
        self.log_path = os.path.join(log_dir, "serve-p%d.log" % parallel)
        cmd = [o["bin"], "serve", "-m", o["model"], "--parallel", str(parallel), "--device",
               o["device"], "-c", str(o["ctx"]), "--port", str(self.port), "--host", "127.0.0.1",
               "--queue", str(max(64, 4 * parallel))]
        if o["threads"]:
            cmd += ["-t", str(o["threads"])]
        cmd += o["serve_args"].split()
        self.cmd = cmd
        env = dict(os.environ)
        env.pop("M40LLM_API_KEY", None)
        self.log = open(self.log_path, "w")
        self.log.write("$ " + " ".join(cmd) + "\n")
        self.log.flush()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)

    def tail(self, n=25):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            die("server (pid %d) died with exit status %d; log %s:\n%s"
                % (self.proc.pid, rc, self.log_path, self.tail()))

    def get(self, path, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            c.close()

    def wait_ready(self, timeout):
        t0 = time.time()
        while time.time() - t0 < timeout:
            self.check_alive()
            try:
                st, _ = self.get("/health", timeout=5)
                if st == 200:
                    return time.time() - t0
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        self.kill()
        die("server not ready after %.0f s; log %s:\n%s" % (timeout, self.log_path, self.tail()))

    def metrics(self):
        self.check_alive()
        st, body = self.get("/metrics")
        if st != 200:
            die("GET /metrics answered %d: %s" % (st, body[:300]))
        m = {}
        for line in body.splitlines():
            mm = re.match(r"^m40llm_(\w+) ([-+0-9.eE]+|nan|inf)$", line)
            if mm:
                m[mm.group(1)] = float(mm.group(2))
        return m

    def stop(self, timeout=120):
        self.check_alive()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            die("server did not exit within %d s of SIGTERM; log %s:\n%s"
                % (timeout, self.log_path, self.tail()))
        self.log.close()
        if rc != 0:
            die("server exited with status %d after SIGTERM; log %s:\n%s"
                % (rc, self.log_path, self.tail()))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------ clients
class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = 0
        self.tokens = 0
        self.lat = []
        self.short = 0  # replies with fewer than max_tokens tokens
        self.replies = {}  # prompt index -> list of texts
        self.error = None


def one_request(conn, o, prompt_ids, pidx):
    body = json.dumps({"prompt": prompt_ids, "max_tokens": o["tokens"], "temperature": 0,
                       "top_k": 1, "seed": 1, "ignore_eos": True, "stream": False})
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError("POST /v1/completions (prompt %d) answered %d: %s"
                           % (pidx, r.status, data[:300].decode("utf-8", "replace")))
    try:
        j = json.loads(data)
        text = j["choices"][0]["text"]
        ntok = int(j["usage"]["completion_tokens"])
        fin = j["choices"][0].get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError) as ex:
        raise RuntimeError("bad reply to prompt %d (%s): %s" % (pidx, ex, data[:300]))
    if ntok < 1 or ntok > o["tokens"]:
        raise RuntimeError("prompt %d: usage.completion_tokens = %d, expected 1..%d"
                           % (pidx, ntok, o["tokens"]))
    return text, ntok, fin


def client(srv, o, prompts, cid, n_cli, n_req, res, start_evt, first):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=900)
        start_evt.wait()
        for k in range(n_req):
            if res.error:
                return
            pidx = (first + cid + k * n_cli) % len(prompts)
            t0 = time.time()
            text, ntok, _ = one_request(conn, o, prompts[pidx], pidx)
            dt = time.time() - t0
            with res.lock:
                res.n += 1
                res.tokens += ntok
                res.lat.append(dt)
                res.short += ntok < o["tokens"]
                res.replies.setdefault(pidx, []).append(text)
        conn.close()
    except Exception as ex:  # noqa: BLE001 - any failure is fatal for the run
        with res.lock:
            if not res.error:
                res.error = "client %d: %s: %s" % (cid, type(ex).__name__, ex)


def run_round(srv, o, prompts, p, n_req, first=0):
    """p client threads, n_req requests each. Returns (Results, wall seconds)."""
    res = Results()
    evt = threading.Event()
    ths = [threading.Thread(target=client, args=(srv, o, prompts, c, p, n_req, res, evt, first),
                            daemon=True) for c in range(p)]
    for t in ths:
        t.start()
    t0 = time.time()
    evt.set()
    while any(t.is_alive() for t in ths):
        for t in ths:
            t.join(0.5)
        if srv.proc.poll() is not None:
            srv.check_alive()
        if res.error:
            break
    wall = time.time() - t0
    if res.error:
        srv.kill()
        die("%s\nserver log %s:\n%s" % (res.error, srv.log_path, srv.tail()))
    return res, wall


# ------------------------------------------------------------------ main
def main():
    o = parse_args(sys.argv[1:])
    log_dir = o["log_dir"] or tempfile.mkdtemp(prefix="srvbench-")
    os.makedirs(log_dir, exist_ok=True)
    try:
        ver = subprocess.run([o["bin"], "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as ex:
        die("cannot run %s: %s" % (o["bin"], ex), 2)
    if ver.returncode != 0:
        die("%s --version failed (missing libraries? LD_LIBRARY_PATH):\n%s"
            % (o["bin"], (ver.stderr or ver.stdout)[-1000:]), 2)
    gpu = ""
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if q.returncode == 0:
            gpu = q.stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        pass

    rows, ref, info = [], {}, {}
    print("# server_parallel: %s, model %s (%.2f GB)"
          % (ver.stdout.strip(), o["model"], os.path.getsize(o["model"]) / 1e9))
    for p in o["levels"]:
        srv = Server(o, p, log_dir)
        try:
            t_load = srv.wait_ready(o["load_timeout"])
            st, body = srv.get("/v1/models")
            meta = json.loads(body)["data"][0].get("meta", {}) if st == 200 else {}
            n_vocab = int(meta.get("n_vocab", 0))
            if n_vocab < 8:
                die("GET /v1/models gave no usable meta.n_vocab: %s" % body[:300])
            if not info:
                info = meta
                rng = random.Random(12345)
                # token-id prompts: exact lengths, tokenizer-independent
                prompts = [[rng.randrange(3, n_vocab) for _ in range(o["prompt_tokens"])]
                           for _ in range(o["prompts"])]
                print("# device %s, n_ctx %s, vocab %d%s; %d prompt tokens, %d generated tokens "
                      "per request, greedy, ignore_eos; logs in %s"
                      % (meta.get("device"), meta.get("n_ctx"), n_vocab,
                         (", GPU " + gpu) if gpu else "", o["prompt_tokens"], o["tokens"],
                         log_dir))
            if int(meta.get("n_parallel", p)) != p:
                die("server reports n_parallel %s, expected %d" % (meta.get("n_parallel"), p))
            # warm-up: one request alone, then one concurrent round (sizes K)
            w1, _ = run_round(srv, o, prompts, 1, 1)
            wres, wwall = run_round(srv, o, prompts, p, 1, first=1)
            if o["requests"] > 0:
                k = o["requests"]
            else:
                k = max(2, min(10000, int(round(o["seconds"] / max(wwall, 1e-3)))))
            m0 = srv.metrics()
            res, wall = run_round(srv, o, prompts, p, k)
            m1 = srv.metrics()
            srv.check_alive()
            srv.stop()
        except SystemExit:
            srv.kill()
            raise
        except Exception as ex:  # noqa: BLE001
            srv.kill()
            die("level P=%d: %s: %s\nserver log %s:\n%s"
                % (p, type(ex).__name__, ex, srv.log_path, srv.tail()))

        d = {k2: m1.get(k2, 0) - m0.get(k2, 0) for k2 in m1}
        steps = d.get("decode_steps_total", 0)
        row = dict(p=p, k=k, n=res.n, tok=res.tokens, wall=wall, tps=res.tokens / wall,
                   rps=res.n / wall, lat=sum(res.lat) / len(res.lat), lat_max=max(res.lat),
                   short=res.short, load=t_load, warm=wwall,
                   batch=d.get("decode_step_sequences_total", 0) / steps if steps else None,
                   ms_step=1e3 * d.get("decode_seconds_total", 0) / steps if steps else None,
                   dec_tps=(d.get("decode_step_sequences_total", 0) /
                            d["decode_seconds_total"]) if d.get("decode_seconds_total") else None,
                   pre_s=d.get("prompt_seconds_total", 0), dec_s=d.get("decode_seconds_total", 0),
                   srv_tok=int(d.get("tokens_generated_total", -1)))
        # greedy replies vs the first level's reply for the same prompt
        mism = checked = 0
        for rr in (w1, wres, res):
            for pidx, texts in rr.replies.items():
                if pidx not in ref and p == o["levels"][0]:
                    ref[pidx] = texts[0]
                if pidx in ref:
                    checked += len(texts)
                    mism += sum(t != ref[pidx] for t in texts)
        row["mism"], row["checked"] = mism, checked
        rows.append(row)
        print("P=%-3d load %.1fs, warm-up round %.2fs -> K=%d requests/client: %d requests, "
              "%d tokens in %.2fs = %.1f t/s (server: %s decode steps, mean batch %s, %s ms/step,"
              " prefill %.2fs, decode %.2fs)%s"
              % (p, t_load, wwall, k, res.n, res.tokens, wall, row["tps"], int(steps),
                 "%.2f" % row["batch"] if row["batch"] else "-",
                 "%.2f" % row["ms_step"] if row["ms_step"] else "-", row["pre_s"], row["dec_s"],
                 "" if row["srv_tok"] == res.tokens else
                 "  WARNING: /metrics counted %d generated tokens, clients %d"
                 % (row["srv_tok"], res.tokens)))

    base = rows[0]["tps"]
    out = []
    out.append("")
    out.append("model `%s`, device %s%s, `--ctx %d`, prompt %d tokens, max_tokens %d "
               "(greedy, ignore_eos)" % (os.path.basename(o["model"]), info.get("device"),
                                         (" (" + gpu + ")") if gpu else "", o["ctx"],
                                         o["prompt_tokens"], o["tokens"]))
    out.append("")
    out.append("| P | requests | completion tokens | wall s | aggregate t/s | speedup vs P=%d "
               "| req/s | mean latency s | mean batch | ms/step | decode-only t/s "
               "| greedy mismatches / checked |" % rows[0]["p"])
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        out.append("| %d | %d | %d | %.2f | %.1f | %.2fx | %.2f | %.3f | %s | %s | %s | %d / %d |"
                   % (r["p"], r["n"], r["tok"], r["wall"], r["tps"], r["tps"] / base, r["rps"],
                      r["lat"], "%.2f" % r["batch"] if r["batch"] else "-",
                      "%.2f" % r["ms_step"] if r["ms_step"] else "-",
                      "%.1f" % r["dec_tps"] if r["dec_tps"] else "-", r["mism"], r["checked"]))
    out.append("")
    notes = []
    if any(r["short"] for r in rows):
        notes.append("%d replies stopped before max_tokens (EOS/stop despite ignore_eos?)"
                     % sum(r["short"] for r in rows))
    for r in rows:
        if r["srv_tok"] != r["tok"]:
            notes.append("P=%d: /metrics tokens_generated_total grew by %d, clients counted %d"
                         % (r["p"], r["srv_tok"], r["tok"]))
    notes.append("aggregate t/s = completion tokens / wall time of the measured window (P "
                 "clients x K requests, prefill and HTTP included); decode-only t/s = "
                 "sequences decoded / seconds inside batched decode steps (/metrics); mismatches = "
                 "replies (warm-up included) differing from the first P=%d reply to the same prompt, "
                 "checked = replies to prompts that level P=%d answered"
                 % (rows[0]["p"], rows[0]["p"]))
    out += ["- " + n for n in notes]
    text = "\n".join(out) + "\n"
    print(text)
    if o["out"]:
        with open(o["out"], "w") as f:
            f.write(text)


main()
PYEOF
