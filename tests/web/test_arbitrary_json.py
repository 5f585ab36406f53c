"""Property: no JSON a client can send breaks the service. Hypothesis posts arbitrary JSON
(any nesting, any Unicode, huge and tiny numbers, a wrong type for every field, other
encodings) to POST /tasks and to a webhook endpoint of a real `litetask serve`; no answer is
a 5xx, and GET /tasks, GET /tasks/{id} of every created task and /health still answer 200."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerProcess, running_server

WEBHOOKS = {"demo.echo": {"scheme": "none"}}
TASK_TYPES = ["demo.echo", "demo.add", "demo.fail", "no.such.type"]
ODD_TEXT = ["\ud800", "a\udc00b", "\x00", "\ufeff", "\u2028", "💥" * 3, "é" * 300]

text = st.text(max_size=20) | st.sampled_from(ODD_TEXT)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31, -(2**31) - 1, 2**63, 2**64, 10**400, 0, -1]),
    st.floats(),
    st.sampled_from([1e300, -1e300, 5e-324, 1e-300, 1e308]),
)
leaves = st.none() | st.booleans() | numbers | text
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=16,
)


def _wrap(value: Any, depth: int, as_object: bool) -> Any:
    for _ in range(depth):
        value = {"k": value} if as_object else [value]
    return value


depths = st.integers(0, 70) | st.sampled_from([100, 330, 600, 990])
deep_values = st.builds(_wrap, json_values, depths, st.booleans())
any_json = st.one_of(json_values, json_values, deep_values)
EDGE_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-14:00",
    "1969-12-31T23:59:59Z",
    "9999-12-30T00:00:00Z",
]
times = st.sampled_from(EDGE_TIMES) | st.datetimes(
    timezones=st.none() | st.just(UTC) | st.timezones()
).map(lambda moment: moment.isoformat())
small = st.integers(-5, 5)
seconds = st.floats(0, 10) | numbers
# Each field's plausible values, then wrong ones: most bodies fail one check, but enough
# pass every check to be stored, which is where a bad value used to do its harm.
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "args": st.lists(any_json, max_size=3),
    "kwargs": st.dictionaries(text, any_json, max_size=3),
    "priority": small | numbers,
    "task_id": text,
    "metadata": st.dictionaries(text, any_json, max_size=3),
    "timeout": seconds,
    "delay": seconds,
    "run_at": times,
    "max_attempts": small | numbers,
    "use_cache": st.booleans(),
    "cache_ttl": seconds,
}
mostly_shallow = st.one_of(json_values, json_values, json_values, deep_values)
plausible = st.fixed_dictionaries(
    {"task_type": st.just("demo.echo")},
    optional={
        "args": st.lists(mostly_shallow, max_size=3),
        "kwargs": st.dictionaries(st.text(max_size=10), mostly_shallow, max_size=3),
        "metadata": st.dictionaries(st.text(max_size=10), mostly_shallow, max_size=3),
        "run_at": times,
        "priority": small,
    },
)
submissions = st.fixed_dictionaries(
    {"task_type": st.sampled_from(TASK_TYPES) | text},
    optional={name: strategy | any_json for name, strategy in FIELDS.items()}
    | {"params": any_json},
)
bodies = st.one_of(plausible, plausible, submissions, any_json)


@st.composite
def encoded(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> bytes:
    """JSON text of a drawn value, mostly UTF-8, sometimes another encoding or mangled."""
    text = json.dumps(draw(values), ensure_ascii=draw(st.sampled_from([True, True, False])))
    encoding = draw(st.sampled_from(["utf-8"] * 12 + ["utf-16", "utf-32-le", "utf-8-sig"]))
    raw = text.encode(encoding, "surrogatepass")
    if draw(st.sampled_from([False] * 19 + [True])):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


KEYS = st.none() | st.sampled_from(["k1", "k2", "x" * 300])
DELIVERY_IDS = st.none() | st.sampled_from(["d1", "d2"]) | st.text("abc-_", max_size=300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"LITETASK_WEBHOOKS": json.dumps(WEBHOOKS), "LITETASK_MAX_WORKERS": "4"}
    with running_server(tmp_path_factory.mktemp("arbitrary"), **env) as process:
        yield process


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _created(response: httpx.Response) -> str | None:
    assert response.status_code < 500, response.text
    if response.status_code not in (200, 202):
        return None
    body = response.json()
    return str(body.get("task_id") or body["id"])


def _assert_reads(client: httpx.Client, task_ids: set[str]) -> None:
    listing = client.get("/tasks", params={"limit": 1000})
    assert listing.status_code == 200, listing.text
    for task_id in task_ids:
        response = client.get(f"/tasks/{task_id}")
        assert response.status_code == 200, response.text
    assert client.get("/health").status_code == 200


@pytest.mark.timeout(600)
def test_arbitrary_json_never_breaks_the_api(server: ServerProcess) -> None:
    created: set[str] = set()
    with httpx.Client(base_url=server.url, timeout=30) as client:

        @examples(250)
        @given(raw=encoded(bodies), key=KEYS)
        def submit(raw: bytes, key: str | None) -> None:
            headers = {"content-type": "application/json"}
            if key is not None:
                headers["idempotency-key"] = key
            task_id = _created(client.post("/tasks", content=raw, headers=headers))
            new = {task_id} if task_id else set()
            _assert_reads(client, new)
            created.update(new)

        @examples(100)
        @given(raw=encoded(any_json), delivery=DELIVERY_IDS)
        def deliver(raw: bytes, delivery: str | None) -> None:
            headers = {"content-type": "application/json"}
            if delivery is not None:
                headers["webhook-id"] = delivery
            task_id = _created(client.post("/webhooks/demo.echo", content=raw, headers=headers))
            new = {task_id} if task_id else set()
            _assert_reads(client, new)
            created.update(new)

        submit()
        deliver()
        assert created, "no example created a task: the strategies are off"
        _assert_reads(client, created)
