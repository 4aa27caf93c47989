"""The seven built-in stages.

Every stage is a generator over tracked items, so the same stage works on a list
or on an endless iterator. User functions may be plain or ``async``: they are
called through ``RunContext.call``, which waits for awaitables on the run's loop.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar, overload

from app.services.data_pipeline.core import PipelineStage, RunContext, Tracked, chain_stages

T = TypeVar("T")
U = TypeVar("U")
A = TypeVar("A")

Problems = Iterable[tuple[str, str]] | Mapping[str, str] | bool | None
"""What a validation function returns: ``None``/``True`` when valid, ``False`` when
invalid without detail, ``(field, reason)`` pairs, or a ``{field: reason}`` mapping."""

FieldCheck = Callable[[Any], object] | tuple[Callable[[Any], object], str]
"""A predicate on one field's value, optionally with the reason to report when it fails."""

Rules = Callable[[T], Problems] | Mapping[str, FieldCheck]


def _label(kind: str, fn: object) -> str:
    """Name a stage after its function, so stats and errors say which one."""
    return f"{kind}({getattr(fn, '__name__', type(fn).__name__)})"


class MapStage(PipelineStage[T, U]):
    """Transform each item with ``fn``."""

    @overload
    def __init__(self, fn: Callable[[T], Awaitable[U]], *, name: str | None = None) -> None: ...
    @overload
    def __init__(self, fn: Callable[[T], U], *, name: str | None = None) -> None: ...
    def __init__(self, fn: Callable[[T], Any], *, name: str | None = None) -> None:
        super().__init__(name=name or _label("map", fn))
        self.fn = fn

    def process(self, items: Iterator[Tracked[T]], ctx: RunContext) -> Iterator[Tracked[U]]:
        """Yield ``fn(item)`` for each item, keeping its position."""
        for item in items:
            yield Tracked(item.position, ctx.call(self.fn, item.value))


class FilterStage(PipelineStage[T, T]):
    """Keep the items for which ``predicate`` is true; dropped items are not rejects."""

    def __init__(self, predicate: Callable[[T], object], *, name: str | None = None) -> None:
        super().__init__(name=name or _label("filter", predicate))
        self.predicate = predicate

    def process(self, items: Iterator[Tracked[T]], ctx: RunContext) -> Iterator[Tracked[T]]:
        """Yield the items that pass."""
        for item in items:
            if ctx.call(self.predicate, item.value):
                yield item


class BatchStage(PipelineStage[T, list[T]]):
    """Group items into lists of ``size`` (the last may be shorter): the unit of work."""

    def __init__(self, size: int, *, name: str | None = None) -> None:
        if size < 1:
            raise ValueError("batch size must be at least 1")
        super().__init__(name=name or f"batch({size})")
        self.size = size

    def process(self, items: Iterator[Tracked[T]], ctx: RunContext) -> Iterator[Tracked[list[T]]]:
        """Yield each batch as soon as it is full, so memory stays at one batch."""
        batch: list[T] = []
        first = 0
        for item in items:
            if not batch:
                first = item.position
            batch.append(item.value)
            if len(batch) == self.size:
                yield Tracked(first, batch)
                batch = []
        if batch:
            yield Tracked(first, batch)


class FlattenStage(PipelineStage[Iterable[T], T]):
    """Yield the elements of each iterable item, one level deep (strings are iterables too)."""

    def __init__(self, *, name: str = "flatten") -> None:
        super().__init__(name=name)

    def process(
        self, items: Iterator[Tracked[Iterable[T]]], ctx: RunContext
    ) -> Iterator[Tracked[T]]:
        """Yield children lazily, each carrying its parent's position."""
        for item in items:
            for child in item.value:
                yield Tracked(item.position, child)


class AggregateStage(PipelineStage[T, A]):
    """Fold all items into one value with ``reducer(accumulator, item)``.

    ``initial`` is deep-copied for each run, so a mutable start value does not
    leak between runs. The fold keeps only the accumulator, never the items.
    Like every stage it yields its value as one item; a pipeline ended by it
    through ``add_stage`` or ``>>`` is a ``FoldedPipeline``, which returns the
    value itself.
    """

    def __init__(
        self, reducer: Callable[[A, T], A | Awaitable[A]], initial: A, *, name: str | None = None
    ) -> None:
        super().__init__(name=name or _label("aggregate", reducer))
        self.reducer = reducer
        self.initial = initial

    def process(self, items: Iterator[Tracked[T]], ctx: RunContext) -> Iterator[Tracked[A]]:
        """Yield one item: the folded value, at the first input's position (0 if none)."""
        accumulator = copy.deepcopy(self.initial)
        first: int | None = None
        for item in items:
            if first is None:
                first = item.position
            accumulator = ctx.call(self.reducer, accumulator, item.value)
        yield Tracked(first or 0, accumulator)


class ValidateStage(PipelineStage[T, T]):
    """Pass valid items on and record invalid ones as rejects, instead of raising.

    ``rules`` is either a function ``item -> Problems`` (see ``Problems``) or a
    mapping ``{field: predicate}`` / ``{field: (predicate, reason)}``. With a
    mapping, a field is read by key from mappings and by attribute otherwise; a
    missing field is reported as "is missing", and a predicate raising
    ``ValueError``/``TypeError`` reports the exception's message. A rule function
    that raises is a bug, not a reject, and fails the run.
    """

    @overload
    def __init__(
        self: ValidateStage[Any], rules: Mapping[str, FieldCheck], *, name: str | None = None
    ) -> None: ...
    @overload
    def __init__(self, rules: Callable[[T], Problems], *, name: str | None = None) -> None: ...
    def __init__(self, rules: Rules[T], *, name: str | None = None) -> None:
        if isinstance(rules, Mapping):
            self.check: Callable[[T], Problems] = _field_checker(rules)
            default = "validate"
        else:
            self.check = rules
            default = _label("validate", rules)
        super().__init__(name=name or default)

    def process(self, items: Iterator[Tracked[T]], ctx: RunContext) -> Iterator[Tracked[T]]:
        """Yield valid items; reject the others with every problem found."""
        for item in items:
            problems = _as_pairs(ctx.call(self.check, item.value))
            if problems:
                ctx.reject(self.name, item, problems)
            else:
                yield item


def _as_pairs(problems: Problems) -> list[tuple[str, str]]:
    """Normalise what a rule returned into ``(field, reason)`` pairs."""
    if problems is None or problems is True:
        return []
    if problems is False:
        return [("", "failed validation")]
    if not isinstance(problems, list | tuple) and isinstance(problems, Mapping):
        return [(str(field), str(reason)) for field, reason in problems.items()]
    return [(str(field), str(reason)) for field, reason in problems]


def _field_checker(rules: Mapping[str, FieldCheck]) -> Callable[[Any], Problems]:
    """Turn ``{field: check}`` rules into a rule function."""

    def check(item: Any) -> Problems:
        problems = []
        for field, rule in rules.items():
            predicate, reason = rule if isinstance(rule, tuple) else (rule, "is invalid")
            problem = _check_field(item, field, predicate, reason)
            if problem is not None:
                problems.append((field, problem))
        return problems

    return check


def _check_field(
    item: Any, field: str, predicate: Callable[[Any], object], reason: str
) -> str | None:
    """Return why ``item``'s ``field`` is invalid, or None if it is fine."""
    try:
        value = item[field] if isinstance(item, dict | Mapping) else getattr(item, field)
    except (KeyError, AttributeError):
        return "is missing"
    try:
        ok = predicate(value)
    except (ValueError, TypeError) as exc:
        return str(exc) or reason
    return None if ok else reason


class BranchStage(PipelineStage[T, list[U]]):
    """Run several paths over the whole stream at once; yield one list per path, in declared order.

    The seed's "parallel processing paths": every path (a stage or an ``a >> b``
    chain) sees every item, in its own thread, and yields what it produced as one
    list, so two paths that each aggregate give ``[[6], [9]]``. The input is read
    once and lazily, each path taking one item at a time, so memory holds the
    paths' outputs (one value for an aggregate), never the input; progress,
    rejects and cancellation work as for any stage. The lists come out when the
    input ends, since a path's outputs are only complete then. Blocking work
    overlaps in the threads; ``async`` functions run as tasks on the run's event
    loop. A failing path stops the branch reading, and its error names
    ``branch[index]/stage``.
    """

    def __init__(self, *paths: PipelineStage[T, U], name: str = "branch") -> None:
        if not paths:
            raise ValueError("a branch needs at least one path")
        super().__init__(name=name)
        self.paths = paths

    def process(self, items: Iterator[Tracked[T]], ctx: RunContext) -> Iterator[Tracked[list[U]]]:
        """Hand each item to every path, then yield each path's outputs at the first position."""
        lanes = [_Lane[T]() for _ in self.paths]
        with ThreadPoolExecutor(len(self.paths), thread_name_prefix=self.name) as pool:
            futures = [
                pool.submit(self._run_path, index, lanes, ctx) for index in range(len(self.paths))
            ]
            first = _feed(items, lanes)
        outputs = [future.result() for future in futures]  # the first failed path raises
        for output in outputs:
            yield Tracked(first, output)

    def _run_path(self, index: int, lanes: Sequence[_Lane[T]], ctx: RunContext) -> list[U]:
        """Run one path over its lane; if it fails, end every lane so the branch stops reading."""
        prefix = f"{self.name}[{index}]/"
        try:
            outputs = chain_stages(self.paths[index].leaves(), lanes[index], ctx, prefix=prefix)
            return [output.value for output in outputs]
        except BaseException:
            for lane in lanes:
                lane.close()
            raise
        finally:
            lanes[index].close()  # a path that stops early must not hold the reader up


def _feed(items: Iterator[Tracked[T]], lanes: Sequence[_Lane[T]]) -> int:
    """Hand each item to every open lane until the input ends or no lane is open.

    Returns the first item's position (0 for no input), which the path lists carry.
    """
    first: int | None = None
    open_lanes = list(lanes)
    try:
        for item in items:
            if first is None:
                first = item.position
            open_lanes = [lane for lane in open_lanes if lane.put(item)]
            if not open_lanes:
                break
    finally:
        for lane in lanes:
            lane.close()
    return 0 if first is None else first


class _Lane(Generic[T]):
    """A one-item hand-off from the branch's reader to one path's thread.

    One slot keeps every path within an item of the reader, so the input is read
    once and never held. Either side may close it: the reader when the input ends
    (the path still gets the item in the slot), the path when it stops reading.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._item: Tracked[T] | None = None
        self._closed = False

    def put(self, item: Tracked[T]) -> bool:
        """Wait for the slot to be empty and fill it; False if the lane is closed."""
        with self._changed:
            while self._item is not None and not self._closed:
                self._changed.wait()
            if self._closed:
                return False
            self._item = item
            self._changed.notify_all()
            return True

    def close(self) -> None:
        """Take no more items; wake whoever is waiting."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __iter__(self) -> Iterator[Tracked[T]]:
        while True:
            with self._changed:
                while self._item is None and not self._closed:
                    self._changed.wait()
                item, self._item = self._item, None
                self._changed.notify_all()
            if item is None:
                return
            yield item
