"""The official openai SDK against `m40llm serve` (run by test_server_openai.sh)."""
import openai

import srvtest as T

T.need(T.STORIES)
ck = T.Checks()
check = ck.check

KEY = "test-key-123"
srv = T.Server(T.STORIES, "--chat-template", "chatml", "-np", "2", "-c", "512", "-t", "1",
               "--api-key", KEY)
client = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % srv.port, api_key=KEY,
                       max_retries=0, timeout=120)

models = client.models.list()
mid = models.data[0].id
check(mid == "stories260K.gguf", "models.list", models)

for q, seed, temp in (("Hello", 1, 0.0), ("Tell me a story about a cat.", 7, 0.0),
                      ("Hi there", 42, 0.8)):
    ref = T.run_cli(T.STORIES, q, 40, "--chat", "--chat-template", "chatml", "--temp", str(temp),
                    "--seed", str(seed), "-c", "512")
    msgs = [{"role": "user", "content": q}]
    r = client.chat.completions.create(model=mid, messages=msgs, max_tokens=40, temperature=temp,
                                       seed=seed)
    text = r.choices[0].message.content
    check(text == ref, "chat.completions.create (temp %g seed %d) == m40llm run" % (temp, seed),
          (text, ref))
    check(r.usage.completion_tokens <= 40 and r.usage.prompt_tokens > 0
          and r.choices[0].finish_reason in ("stop", "length"), "usage and finish_reason", r)
    parts, finish, usage = [], None, None
    stream = client.chat.completions.create(model=mid, messages=msgs, max_tokens=40,
                                            temperature=temp, seed=seed, stream=True,
                                            stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.content:
                parts.append(ch.delta.content)
            if ch.finish_reason:
                finish = ch.finish_reason
    check("".join(parts) == ref, "chat stream=True (temp %g seed %d) == m40llm run" % (temp, seed),
          ("".join(parts), ref))
    check(finish == r.choices[0].finish_reason and usage is not None
          and usage.completion_tokens == r.usage.completion_tokens, "stream finish and usage",
          (finish, usage))

P = "Once upon a time"
ref = T.run_cli(T.STORIES, P, 30, "--temp", "0", "-c", "512")
r = client.completions.create(model=mid, prompt=P, max_tokens=30, temperature=0)
check(r.choices[0].text == ref, "completions.create == m40llm run", (r, ref))
parts = [c.choices[0].text for c in client.completions.create(model=mid, prompt=P, max_tokens=30,
                                                              temperature=0, stream=True)
         if c.choices]
check("".join(parts) == ref, "completions stream == m40llm run")
r = client.completions.create(model=mid, prompt=P, max_tokens=30, temperature=0, stop=[" girl"])
check(r.choices[0].text == ref[:ref.find(" girl")] and r.choices[0].finish_reason == "stop",
      "completions stop", r)

try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    check(False, "unknown model raises NotFoundError")
except openai.NotFoundError as e:
    check(e.status_code == 404 and "gpt-4o" in str(e), "unknown model raises NotFoundError", e)
try:
    bad = openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0)
    bad.models.list()
    check(False, "wrong key raises AuthenticationError")
except openai.AuthenticationError as e:
    check(e.status_code == 401, "wrong key raises AuthenticationError", e)
try:
    client.chat.completions.create(model=mid, messages=[{"role": "user", "content": "x"}],
                                   max_tokens=-3)
    check(False, "negative max_tokens raises BadRequestError")
except openai.BadRequestError as e:
    check(e.status_code == 400 and "max_tokens" in str(e), "negative max_tokens -> 400", e)

check(srv.stop() == 0, "clean shutdown", srv.log_text()[-3000:])
ck.finish()
