"""How an import's independent groups run: side by side on DynamoDB (1,000 rows must fit one
Lambda call), in turn under an emulator that is not thread-safe (the moto tests set `in_turn`)."""
from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T, R = TypeVar("T"), TypeVar("R")
WORKERS = 8


def in_threads(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    items = list(items)
    if len(items) <= 1:
        return [work(item) for item in items]
    # Each task runs in a copy of the caller's context: the request's language, request id, base URL.
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items)), thread_name_prefix="import") as pool:
        return list(pool.map(lambda item: context.copy().run(work, item), items))


def in_turn(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    return [work(item) for item in items]


run_all: Callable = in_threads


def each(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    return run_all(work, items)
