"""What every stage shares: tracked items, the per-run context, errors and counters.

Stages work on lazy streams of ``Tracked`` items so that a reject or an error can
always name the position of the input row it came from, however far down the
pipeline it happens.
"""

from __future__ import annotations

import inspect
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import GeneratorType
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
In_contra = TypeVar("In_contra", contravariant=True)
Out_co = TypeVar("Out_co", covariant=True)
Next = TypeVar("Next")

INPUT_STAGE = "input"
"""Stage name used in errors raised while reading the pipeline's input."""

ProgressCallback = Callable[["Progress"], object]
RejectCallback = Callable[["Reject"], object]
Waiter = Callable[[Awaitable[Any]], Any]


class Tracked(NamedTuple, Generic[T_co]):
    """An item with the 0-based position of the input it came from.

    Items built from several inputs (a batch, an aggregate) carry the position of
    the first input they were built from; flattened children carry their parent's.
    """

    position: int
    value: T_co


@dataclass(frozen=True, slots=True)
class Reject:
    """One problem with one input item, reported instead of raised."""

    position: int
    field: str
    reason: str
    item: Any
    stage: str


@dataclass(slots=True)
class StageStats:
    """Counters for one stage; ``seconds`` is the stage's own time, upstream excluded."""

    name: str
    items_in: int = 0
    items_out: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for progress bars: inputs read, outputs produced, inputs rejected."""

    items_in: int
    items_out: int
    rejected: int
    done: bool = False


class PipelineError(Exception):
    """A stage failed; names the pipeline, the stage and the item, with the cause chained."""

    def __init__(self, pipeline: str, stage: str, position: int | None) -> None:
        self.pipeline = pipeline
        self.stage = stage
        self.position = position
        where = "" if position is None else f" at item {position}"
        super().__init__(f"pipeline {pipeline!r} failed in stage {stage!r}{where}")

    def __reduce__(self) -> tuple[type[PipelineError], tuple[str, str, int | None]]:
        """Pickle by fields, so job queues can store the error."""
        return (type(self), (self.pipeline, self.stage, self.position))

    def __str__(self) -> str:
        cause = self.__cause__
        base = str(self.args[0])
        return base if cause is None else f"{base}: {type(cause).__name__}: {cause}"


class RunContext:
    """Per-run state the stages share: rejects, counters, progress and awaiting.

    One context lives for one run, so a pipeline object can be run many times
    (and concurrently) without sharing state.
    """

    def __init__(
        self,
        pipeline: str,
        *,
        wait: Waiter,
        on_progress: ProgressCallback | None = None,
        progress_every: int = 100,
        on_reject: RejectCallback | None = None,
    ) -> None:
        if progress_every < 1:
            raise ValueError("progress_every must be at least 1")
        self.pipeline = pipeline
        self.rejects: list[Reject] = []
        self.items_in = 0
        self.items_out = 0
        self.rejected = 0
        self.cancelled = threading.Event()
        self._wait = wait
        self._on_progress = on_progress
        self._every = progress_every
        self._on_reject = on_reject
        self._lock = threading.Lock()
        self._plain_types: set[type] = set()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a user function; if it returns an awaitable, wait for it on the run's loop."""
        result = fn(*args)
        kind = type(result)
        if kind in self._plain_types:
            return result
        if inspect.isawaitable(result):
            return self._wait(result)
        if kind is not GeneratorType:  # only generator *instances* can be awaitable
            self._plain_types.add(kind)  # skips the slow ABC check for the next million rows
        return result

    def reject(self, stage: str, item: Tracked[Any], problems: Sequence[tuple[str, str]]) -> None:
        """Keep an item's problems, or hand them to ``on_reject`` so memory stays flat.

        Locked because branch paths run in threads.
        """
        rejects = [Reject(item.position, f, reason, item.value, stage) for f, reason in problems]
        with self._lock:
            self.rejected += 1
            if self._on_reject is None:
                self.rejects.extend(rejects)
                return
            for reject in rejects:
                self._on_reject(reject)

    def took_in(self) -> None:
        """Count one input item and report progress every ``progress_every`` items."""
        self.items_in += 1
        if self.items_in % self._every == 0:
            self.report()

    def gave_out(self) -> None:
        """Count one output item."""
        self.items_out += 1

    def progress(self, *, done: bool = False) -> Progress:
        """Return the counters as an immutable snapshot."""
        return Progress(self.items_in, self.items_out, self.rejected, done)

    def report(self, *, done: bool = False) -> None:
        """Send a snapshot to the progress callback, if any."""
        if self._on_progress is None:
            return
        try:
            self._on_progress(self.progress(done=done))
        except Exception as exc:
            raise PipelineError(self.pipeline, "on_progress", None) from exc


class PipelineStage(ABC, Generic[In_contra, Out_co]):
    """Typed base of every stage: turns a lazy stream of tracked items into another.

    Subclasses implement ``process`` as a generator and should pass positions on;
    the pipeline counts, times and wraps errors around them, so stages need not.
    """

    def __init__(self, *, name: str) -> None:
        self.name = name

    @abstractmethod
    def process(
        self, items: Iterator[Tracked[In_contra]], ctx: RunContext
    ) -> Iterator[Tracked[Out_co]]:
        """Consume ``items`` lazily and yield this stage's outputs."""

    def leaves(self) -> list[PipelineStage[Any, Any]]:
        """Return the simple stages this one is made of (itself, unless composite)."""
        return [self]

    def __rshift__(self, other: PipelineStage[Out_co, Next]) -> ChainStage[In_contra, Next]:
        """Compose ``self >> other`` into one stage that feeds ``self``'s output to ``other``."""
        return ChainStage([*self.leaves(), *other.leaves()])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class ChainStage(PipelineStage[In_contra, Out_co]):
    """Several stages behaving as one; what ``stage >> stage`` builds."""

    def __init__(
        self, stages: Sequence[PipelineStage[Any, Any]], *, name: str | None = None
    ) -> None:
        self.stages = tuple(leaf for stage in stages for leaf in stage.leaves())
        super().__init__(name=name or " >> ".join(stage.name for stage in self.stages))

    def leaves(self) -> list[PipelineStage[Any, Any]]:
        """Return the chained stages, so pipelines count and time each one."""
        return list(self.stages)

    def process(
        self, items: Iterator[Tracked[In_contra]], ctx: RunContext
    ) -> Iterator[Tracked[Out_co]]:
        """Run the chained stages one after the other, each named in its own errors."""
        return chain_stages(self.stages, items, ctx)


def chain_stages(
    stages: Iterable[PipelineStage[Any, Any]],
    items: Iterable[Tracked[Any]],
    ctx: RunContext,
    *,
    prefix: str = "",
) -> Iterator[Tracked[Any]]:
    """Connect stages lazily, with throwaway counters; errors name ``prefix + stage``."""
    stream, meter = _measured(iter(items))
    for stage in stages:
        stream, meter = run_stage(stage, stream, meter, StageStats(prefix + stage.name), ctx)
    return stream


class Meter:
    """What a stage needs to know about the stream feeding it.

    ``seconds`` is all the time spent producing the stream, upstream included, so
    a stage's own time is its meter's seconds minus its input meter's seconds.
    """

    __slots__ = ("count", "position", "seconds")

    def __init__(self) -> None:
        self.position: int | None = None
        self.count = 0
        self.seconds = 0.0


def track(data: Iterable[T], ctx: RunContext) -> tuple[Iterator[Tracked[T]], Meter]:
    """Number the input lazily; a failing input iterator becomes a PipelineError.

    ``iter`` is called now, so passing something that is not iterable fails at once.
    """
    meter = Meter()
    return _numbered(iter(data), meter, ctx), meter


def _numbered(iterator: Iterator[T], meter: Meter, ctx: RunContext) -> Iterator[Tracked[T]]:
    """Yield ``Tracked`` input items until the input ends or the run is cancelled."""
    position = 0
    while not ctx.cancelled.is_set():
        started = time.perf_counter()
        try:
            value = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise PipelineError(ctx.pipeline, INPUT_STAGE, position) from exc
        finally:
            meter.seconds += time.perf_counter() - started
        ctx.took_in()
        meter.position = position
        meter.count += 1
        yield Tracked(position, value)
        position += 1


def _measured(items: Iterator[Tracked[Any]]) -> tuple[Iterator[Tracked[Any]], Meter]:
    """Meter an already tracked stream, e.g. the one item a branch path gets."""
    meter = Meter()

    def measured() -> Iterator[Tracked[Any]]:
        while True:
            started = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                meter.seconds += time.perf_counter() - started
            meter.position = item.position
            meter.count += 1
            yield item

    return measured(), meter


def run_stage(
    stage: PipelineStage[Any, Any],
    items: Iterator[Tracked[Any]],
    upstream: Meter,
    stats: StageStats,
    ctx: RunContext,
) -> tuple[Iterator[Tracked[Any]], Meter]:
    """Connect one stage to its input; return its lazy output and the output's meter."""
    meter = Meter()
    return _drive(stage, items, upstream, meter, stats, ctx), meter


def _drive(
    stage: PipelineStage[Any, Any],
    items: Iterator[Tracked[Any]],
    upstream: Meter,
    meter: Meter,
    stats: StageStats,
    ctx: RunContext,
) -> Iterator[Tracked[Any]]:
    """Pull a stage's outputs: count them, time the stage's own work, name it in errors.

    An error's position is that of the last item the stage pulled from upstream.
    """
    outputs = stage.process(items, ctx)
    try:
        while True:
            started = time.perf_counter()
            try:
                item = next(outputs)
            except StopIteration:
                return
            except PipelineError:
                raise
            except Exception as exc:
                raise PipelineError(ctx.pipeline, stats.name, upstream.position) from exc
            finally:
                meter.seconds += time.perf_counter() - started
                stats.seconds = meter.seconds - upstream.seconds
                stats.items_in = upstream.count
            stats.items_out += 1
            meter.position = item.position
            meter.count += 1
            yield item
    finally:
        _close(outputs)


def _close(iterator: Iterator[Any]) -> None:
    """Close a generator now rather than at garbage collection, so its cleanup runs in order."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
