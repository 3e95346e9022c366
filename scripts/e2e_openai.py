#!/usr/bin/env python3
"""Drives a running `kujira serve` with the official openai Python package (see scripts/e2e-server.sh).
Prints one PASS/FAIL line per check and a closing 'N passed, N failed' line; exits 1 on any failure."""
import openai
from openai import OpenAI
from e2e_common import args, check, client, deepseek, finish

def extra(obj, key):
    return (obj.model_extra or {}).get(key)

def check_usage(usage, max_completion):
    assert usage is not None, "usage missing"
    assert usage.prompt_tokens > 0, usage
    assert 0 < usage.completion_tokens <= max_completion, usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
    hit, miss = extra(usage, "prompt_cache_hit_tokens"), extra(usage, "prompt_cache_miss_tokens")
    assert hit is not None and miss is not None and hit + miss == usage.prompt_tokens, usage
    assert usage.prompt_tokens_details.cached_tokens == hit, usage
    assert 0 <= usage.completion_tokens_details.reasoning_tokens <= usage.completion_tokens, usage

state = {}
messages = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "What is 2+2?"}]

@check("models list")
def _():
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert len(ids) == 1 and ids[0], ids
    state["model"] = ids[0]
    assert client.models.retrieve(ids[0]).id == ids[0]

model = state.get("model", "kujira")

@check("chat non-streaming")
def _():
    r = client.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0)
    choice = r.choices[0]
    assert r.object == "chat.completion" and choice.message.role == "assistant", r
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length"), choice.finish_reason
    check_usage(r.usage, 12)
    state["chat"] = (choice.message.content, extra(choice.message, "reasoning_content"))

@check("chat streaming with usage")
def _():
    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    content, reasoning, finish, usage = "", "", None, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            content += c.delta.content or ""
            reasoning += extra(c.delta, "reasoning_content") or ""
            finish = c.finish_reason or finish
    assert finish in ("stop", "length"), finish
    check_usage(usage, 12)
    if "chat" in state:
        assert (content, reasoning or None) == (state["chat"][0], state["chat"][1] or None), (content, reasoning, state["chat"])

@check("prefix cache hit on repeat (DeepSeek base_url)")
def _():
    r = deepseek.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=0)
    check_usage(r.usage, 4)
    assert extra(r.usage, "prompt_cache_hit_tokens") > 0, r.usage

@check("seeded sampling is reproducible")
def _():
    a = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=1, seed=7)
    b = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=1, seed=7)
    assert a.choices[0].message.content == b.choices[0].message.content

@check("json_object mode")
def _():
    import json
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Give JSON."}], max_tokens=48,
                                       temperature=0, response_format={"type": "json_object"})
    text = r.choices[0].message.content
    assert text.lstrip().startswith("{"), text
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict), text

@check("completions")
def _():
    r = client.completions.create(model=model, prompt="Once upon a time", max_tokens=6, temperature=0)
    assert r.object == "text_completion" and isinstance(r.choices[0].text, str), r
    check_usage(r.usage, 6)
    chunks = list(client.completions.create(model=model, prompt="Once upon a time", max_tokens=6, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == r.choices[0].text

@check("401 with a wrong key")
def _():
    bad = OpenAI(base_url=args.base + "/v1", api_key="wrong-key", max_retries=0)
    try:
        bad.models.list()
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.body.get("type") == "authentication_error", e.body
        return
    raise AssertionError("no 401")

@check("422 names the invalid parameter")
def _():
    try:
        client.chat.completions.create(model=model, messages=messages, temperature=5)
    except openai.UnprocessableEntityError as e:
        assert e.status_code == 422 and e.body.get("param") == "temperature", e.body
        return
    raise AssertionError("no 422")

@check("400 when the prompt exceeds the context")
def _():
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "word " * 40000}], max_tokens=2)
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.body.get("code") == "context_length_exceeded", e.body
        return
    raise AssertionError("no 400")

finish("openai")
