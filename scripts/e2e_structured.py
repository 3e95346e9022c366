#!/usr/bin/env python3
"""Structured outputs through `kujira serve` on a real model (SmolLM2; see scripts/e2e-server.sh): OpenAI's
`response_format: {"type": "json_schema"}` and the SDK's pydantic `parse()`. Every reply must finish by itself and be
valid for an independent validator (the `jsonschema` package) and for pydantic. Prints PASS/FAIL lines and
'structured: N passed, N failed'."""
import openai
from e2e_common import check, client, finish

model = client.models.list().data[0].id

@check("json_schema: pydantic parse() gets a valid Person")
def _():
    import json
    from typing import Literal, Optional
    import jsonschema
    from openai.lib._pydantic import to_strict_json_schema
    from pydantic import BaseModel, Field

    class Address(BaseModel):
        city: str
        zip: int

    class Person(BaseModel):
        name: str
        age: int
        height: float
        role: Literal["admin", "user", "guest"]
        tags: list[str] = Field(min_length=1, max_length=3)
        address: Address
        nickname: Optional[str]
        active: bool

    for seed in (11, 12):
        r = client.chat.completions.parse(model=model, messages=[{"role": "user", "content": "Invent a person."}],
                                          response_format=Person, max_tokens=1500, temperature=0.7, seed=seed)
        choice = r.choices[0]
        assert choice.finish_reason == "stop", (choice.finish_reason, choice.message.content[-200:])
        assert isinstance(choice.message.parsed, Person), choice.message
        jsonschema.validate(json.loads(choice.message.content), to_strict_json_schema(Person))

@check("json_schema: nested arrays, enums, numbers validate (jsonschema)")
def _():
    import json
    import jsonschema
    schema = {"type": "object", "additionalProperties": False, "required": ["items", "status", "total"],
              "properties": {
                  "status": {"enum": ["ok", "partial", 3, None]},
                  "total": {"type": "number"},
                  "items": {"type": "array", "minItems": 1, "maxItems": 3,
                            "items": {"type": "object", "additionalProperties": False, "required": ["id", "qty"],
                                      "properties": {"id": {"type": "integer"}, "qty": {"type": "integer"},
                                                     "labels": {"type": "array", "items": {"enum": ["red", "green"]}, "maxItems": 2}}}}}}
    for seed in (1, 2, 3):
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "An order."}], max_tokens=1500,
                                           temperature=0.7, seed=seed,
                                           response_format={"type": "json_schema", "json_schema": {"name": "order", "schema": schema, "strict": True}})
        choice = r.choices[0]
        assert choice.finish_reason == "stop", (choice.finish_reason, choice.message.content[-200:])
        jsonschema.validate(json.loads(choice.message.content), schema)

@check("json_schema: an unsupported keyword is a 422 naming it")
def _():
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
                                       response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
                                           "type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}}})
    except openai.UnprocessableEntityError as e:
        assert "minimum" in str(e) and "#/properties/n" in str(e), str(e)
    else:
        raise AssertionError("accepted a schema with 'minimum'")

finish("structured")
