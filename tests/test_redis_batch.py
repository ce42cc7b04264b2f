"""The Redis commands of concurrent callers share round trips (``core.redis.Batcher``), and
each caller still gets its own command's answer or error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from commissary.core.redis import Batcher
from tests.conftest import Backend

NAME = "batch-test"


@pytest.fixture
async def redis(backend: Backend) -> AsyncIterator[Redis]:
    """A client of the test Redis of its own, named so the server can list its connections."""
    if backend.redis is None or backend.settings.redis_url is None:
        pytest.skip("the embedded default has no Redis")
    client = Redis.from_url(backend.settings.redis_url, client_name=NAME)
    yield client
    await client.aclose()


async def connections(redis: Redis) -> int:
    return len([c for c in await redis.client_list() if c["name"] == NAME])


async def test_concurrent_callers_share_a_connection_and_each_get_their_answer(
    redis: Redis,
) -> None:
    batcher = Batcher(redis)
    answers = await asyncio.gather(*(batcher.call("INCR", "batch:n") for _ in range(50)))
    assert sorted(answers) == list(range(1, 51))
    assert await connections(redis) == 1
    await batcher.close()
    # The same calls made one by one take a connection each while they wait.
    await asyncio.gather(*(redis.incr("batch:n") for _ in range(50)))
    assert await connections(redis) > 1


async def test_an_error_reaches_only_the_caller_whose_command_failed(redis: Redis) -> None:
    await redis.set("batch:text", "not a number")
    batcher = Batcher(redis)
    wrong, right, several = await asyncio.gather(
        batcher.call("INCR", "batch:text"),
        batcher.call("INCR", "batch:m"),
        batcher.call_many([("INCR", "batch:m"), ("GET", "batch:text")]),
        return_exceptions=True,
    )
    assert isinstance(wrong, ResponseError)
    assert right == 1
    assert several == [2, b"not a number"]


async def test_a_cancelled_caller_leaves_the_others_their_answers(redis: Redis) -> None:
    batcher = Batcher(redis)
    first = asyncio.create_task(batcher.call("INCR", "batch:c"))
    gone = asyncio.create_task(batcher.call("INCR", "batch:c"))
    last = asyncio.create_task(batcher.call("INCR", "batch:c"))
    await asyncio.sleep(0)
    gone.cancel()
    assert sorted([await first, await last]) in ([1, 2], [1, 3], [2, 3])
    assert gone.cancelled()
    assert await batcher.call("GET", "batch:c") in (b"2", b"3")


async def test_every_caller_sees_redis_away() -> None:
    away = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    batcher = Batcher(away)
    answers = await asyncio.gather(
        *(batcher.call("INCR", "batch:x") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(a, RedisConnectionError) for a in answers)
    assert await batcher.call_many([]) == []
    await away.aclose()


async def test_a_set_nx_repeated_in_one_batch_is_sent_once_and_answered_as_redis_would(
    redis: Redis,
) -> None:
    batcher = Batcher(redis)
    await redis.config_resetstat()
    wake = ("SET", "batch:wake", 1, "NX", "EX", 10)
    other = ("SET", "batch:other", 1, "NX", "EX", 10)
    answers = await asyncio.gather(
        *(batcher.call_many([wake], first_only=True) for _ in range(20)),
        batcher.call_many([other, wake], first_only=True),
    )
    assert [a for (a,) in answers[:20]] == [True] + [None] * 19
    assert answers[20] == [True, None]
    stats = await redis.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 2  # one per key, not 22
    again = await batcher.call_many([wake], first_only=True)  # a later batch: sent again
    assert again == [None]
    await batcher.close()
