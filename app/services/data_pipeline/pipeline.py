"""The ``Pipeline``: a named list of stages, run eagerly, lazily or from async code.

A ``Pipeline`` runs to a list of outputs; one ended by an ``AggregateStage`` is a
``FoldedPipeline``, which runs to the folded value itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast, overload

from app.services.data_pipeline.aio import LoopWaiter, iterate_async
from app.services.data_pipeline.core import (
    ChainStage,
    PipelineError,
    PipelineStage,
    Progress,
    ProgressCallback,
    Reject,
    RejectCallback,
    RunContext,
    StageStats,
    Tracked,
    run_stage,
    track,
)
from app.services.data_pipeline.stages import AggregateStage

In = TypeVar("In")
Out = TypeVar("Out")
Next = TypeVar("Next")
A = TypeVar("A")
R = TypeVar("R")

SINK_STAGE = "sink"
"""Stage name used in errors raised by a ``sink`` and in its stats."""

Sink = Callable[[Out], object]


@dataclass(frozen=True, slots=True)
class _Hooks:
    """The observer arguments shared by ``stream``, ``run`` and ``arun``."""

    on_progress: ProgressCallback | None
    progress_every: int
    on_reject: RejectCallback | None


@dataclass(frozen=True, slots=True)
class PipelineResult(Generic[R]):
    """What a run produced: the output, the rejects, and per-stage counters.

    ``R`` is the whole output: ``list[Out]`` for a ``Pipeline``, the folded
    value's type for a ``FoldedPipeline``.
    """

    output: R
    rejects: tuple[Reject, ...]
    stats: tuple[StageStats, ...]
    progress: Progress

    @property
    def ok(self) -> bool:
        """Whether every input item passed validation."""
        return not self.rejects


class PipelineRun(Generic[Out]):
    """One lazy run: iterate it for outputs; rejects, stats and progress fill in as you go.

    Use it as a context manager (or exhaust it) so a stream abandoned half-way
    still closes its stages and any event loop it started.
    """

    def __init__(
        self,
        stages: Iterable[PipelineStage[Any, Any]],
        data: Iterable[Any],
        ctx: RunContext,
        waiter: LoopWaiter,
    ) -> None:
        stages = tuple(stages)
        self._ctx = ctx
        self._waiter = waiter
        self.stats = [StageStats(stage.name) for stage in stages]
        stream, meter = track(data, ctx)
        for stage, stats in zip(stages, self.stats, strict=True):
            stream, meter = run_stage(stage, stream, meter, stats, ctx)
        self._outputs = cast(Iterator[Tracked[Out]], stream)
        self._finished = False
        self.position: int | None = None
        """Position of the input the last output was built from (a batch's first row)."""

    @property
    def rejects(self) -> list[Reject]:
        """Rejects recorded so far (live: it grows while the run is consumed)."""
        return self._ctx.rejects

    @property
    def progress(self) -> Progress:
        """Counters so far."""
        return self._ctx.progress()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Out:
        try:
            item = next(self._outputs)
        except StopIteration:
            try:
                if not self._finished:
                    self._ctx.report(done=True)
            finally:
                self.close()
            raise
        except BaseException:
            self.close()
            raise
        self._ctx.gave_out()
        self.position = item.position
        return item.value

    def collect(self, sink: Sink[Out] | None = None) -> PipelineResult[list[Out]]:
        """Consume the run; outputs go to ``sink`` one by one if given, else into a list."""
        output: list[Out] = []
        with self:
            if sink is None:
                output.extend(self)
            else:
                self._drain(sink)
        progress = self._ctx.progress(done=True)
        return PipelineResult(output, tuple(self.rejects), tuple(self.stats), progress)

    def _drain(self, sink: Sink[Out]) -> None:
        """Hand each output to ``sink`` as it is produced, timed as a stage of its own."""
        stats = StageStats(SINK_STAGE)
        self.stats.append(stats)
        for value in self:
            stats.items_in += 1
            started = time.perf_counter()
            try:
                self._ctx.call(sink, value)
            except Exception as exc:
                raise PipelineError(self._ctx.pipeline, SINK_STAGE, self.position) from exc
            finally:
                stats.seconds += time.perf_counter() - started
            stats.items_out += 1

    def cancel(self) -> None:
        """Stop reading input after the current item (used when ``arun`` is cancelled)."""
        self._ctx.cancelled.set()

    def close(self) -> None:
        """Close the stages and stop the run's private event loop, if any."""
        self._finished = True
        close = getattr(self._outputs, "close", None)
        if close is not None:
            close()
        self._waiter.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Pipeline(Generic[In, Out]):
    """A named sequence of stages; ``In`` is the type of one input item, ``Out`` of one output.

    The seed writes ``Pipeline[list[dict], list[User]]``; that runs as written
    (type arguments are not checked at runtime). For mypy, ``In`` is the item type
    (``dict[str, Any]``) and ``Out`` is what ``run`` yields per item: with a
    final ``BatchStage`` that is ``list[User]``. ``run().output`` is always a
    ``list[Out]``; ending the pipeline with an ``AggregateStage`` through
    ``add_stage`` or ``>>`` gives a ``FoldedPipeline`` instead (see there).
    """

    def __init__(self, name: str, stages: Iterable[PipelineStage[Any, Any]] = ()) -> None:
        self.name = name
        self._stages = [leaf for stage in stages for leaf in stage.leaves()]

    @property
    def stages(self) -> tuple[PipelineStage[Any, Any], ...]:
        """The stages in order, with composites (``a >> b``) flattened."""
        return tuple(self._stages)

    # Here and in __rshift__, an AggregateStage typed as a plain PipelineStage still
    # folds at run time; only mypy, picking the second overload, takes it for a stream.
    @overload
    def add_stage(self, stage: AggregateStage[Any, A]) -> FoldedPipeline[In, A]: ...
    @overload
    def add_stage(self, stage: PipelineStage[Any, Any]) -> Self: ...
    def add_stage(self, stage: PipelineStage[Any, Any]) -> Self | FoldedPipeline[In, Any]:
        """Append a stage (in place) and return the pipeline, for chaining.

        An ``AggregateStage`` ends the chain: the return value is then the
        ``FoldedPipeline`` of these stages, while this pipeline keeps its type and
        so still runs to a list (of the one folded value).
        """
        before = tuple(self._stages)
        self._stages.extend(stage.leaves())
        if isinstance(stage, AggregateStage):
            return FoldedPipeline(self.name, before, stage)
        return self

    @overload
    def __rshift__(  # type: ignore[overload-overlap]
        self, stage: AggregateStage[Out, A]
    ) -> FoldedPipeline[In, A]: ...
    @overload
    def __rshift__(self, stage: PipelineStage[Out, Next]) -> Pipeline[In, Next]: ...
    def __rshift__(
        self, stage: PipelineStage[Out, Any]
    ) -> Pipeline[In, Any] | FoldedPipeline[In, Any]:
        """Return a new pipeline with ``stage`` appended (folded if it is an aggregate)."""
        if isinstance(stage, AggregateStage):
            return FoldedPipeline(self.name, self._stages, stage)
        return Pipeline(self.name, [*self._stages, stage])

    def as_stage(self) -> ChainStage[In, Out]:
        """Return this pipeline's stages as one stage, e.g. to use it as a branch path."""
        return ChainStage(self._stages, name=self.name)

    def stream(
        self,
        data: Iterable[In],
        *,
        on_progress: ProgressCallback | None = None,
        progress_every: int = 100,
        on_reject: RejectCallback | None = None,
    ) -> PipelineRun[Out]:
        """Start a lazy run: nothing is read until the returned run is iterated."""
        hooks = _Hooks(on_progress, progress_every, on_reject)
        return self._start(data, LoopWaiter(), hooks)

    def run(
        self,
        data: Iterable[In],
        *,
        sink: Sink[Out] | None = None,
        on_progress: ProgressCallback | None = None,
        progress_every: int = 100,
        on_reject: RejectCallback | None = None,
    ) -> PipelineResult[list[Out]]:
        """Run to the end; with a ``sink``, outputs are handed over instead of collected."""
        hooks = _Hooks(on_progress, progress_every, on_reject)
        return self._start(data, LoopWaiter(), hooks).collect(sink)

    async def arun(
        self,
        data: Iterable[In] | AsyncIterable[In],
        *,
        sink: Sink[Out] | None = None,
        on_progress: ProgressCallback | None = None,
        progress_every: int = 100,
        on_reject: RejectCallback | None = None,
    ) -> PipelineResult[list[Out]]:
        """Run in a worker thread, awaiting ``async`` stage functions on the caller's loop.

        The progress callback and sync stage functions are called in that thread.
        If the awaiting task is cancelled, input reading stops after the current item.
        """
        loop = asyncio.get_running_loop()
        source = iterate_async(data, loop) if isinstance(data, AsyncIterable) else data
        hooks = _Hooks(on_progress, progress_every, on_reject)
        run = self._start(source, LoopWaiter(loop), hooks)
        try:
            return await asyncio.to_thread(run.collect, sink)
        except asyncio.CancelledError:
            run.cancel()
            raise

    def _start(self, data: Iterable[In], waiter: LoopWaiter, hooks: _Hooks) -> PipelineRun[Out]:
        """Build a fresh context and run, so runs never share state."""
        ctx = RunContext(
            self.name,
            wait=waiter,
            on_progress=hooks.on_progress,
            progress_every=hooks.progress_every,
            on_reject=hooks.on_reject,
        )
        return PipelineRun(self._stages, data, ctx, waiter)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: {' >> '.join(s.name for s in self._stages)}>"


class FoldedPipeline(Generic[In, Out]):
    """A pipeline ended by an ``AggregateStage``: its run's output is the folded value itself.

        total = Pipeline[list[int], int]("total").add_stage(FlattenStage()).add_stage(
            AggregateStage(lambda subtotal, x: subtotal + x, 0)
        )                                      # a FoldedPipeline[list[int], int]
        total.run([[1, 2], [3]]).output        # 6, an int; not [6]

    A type of its own because a stream's run gives a list and a fold's one value,
    and one class cannot type ``run`` both ways. As in the seed's builder, the
    stage added decides: ``add_stage`` and ``>>`` return this when given an
    ``AggregateStage``, so mypy knows ``output`` is ``Out`` (``Any`` if the
    reducer is typed ``Any``, as ``operator.add`` is). Everywhere else an
    aggregate is an ordinary stage yielding its one value: inside a chain (so
    ``aggregate >> map`` still streams), in a branch path (one list per path,
    ``[6]``), or at the end of a ``Pipeline`` built from a list of stages.

    The input still streams: it is read lazily and only the accumulator is kept;
    progress, rejects, ``arun``'s async input and cancellation work as for a
    ``Pipeline``. There is no ``sink`` or ``stream``: there is one value, returned.
    """

    def __init__(
        self, name: str, stages: Iterable[PipelineStage[Any, Any]], fold: AggregateStage[Any, Out]
    ) -> None:
        self.name = name
        self._pipeline = Pipeline[In, Out](name, [*stages, fold])

    @property
    def stages(self) -> tuple[PipelineStage[Any, Any], ...]:
        """The stages in order, the aggregate last."""
        return self._pipeline.stages

    def run(
        self,
        data: Iterable[In],
        *,
        on_progress: ProgressCallback | None = None,
        progress_every: int = 100,
        on_reject: RejectCallback | None = None,
    ) -> PipelineResult[Out]:
        """Run to the end and return the folded value as the result's ``output``."""
        result = self._pipeline.run(
            data, on_progress=on_progress, progress_every=progress_every, on_reject=on_reject
        )
        return _unwrapped(result)

    async def arun(
        self,
        data: Iterable[In] | AsyncIterable[In],
        *,
        on_progress: ProgressCallback | None = None,
        progress_every: int = 100,
        on_reject: RejectCallback | None = None,
    ) -> PipelineResult[Out]:
        """``run`` from async code, as ``Pipeline.arun`` does (cancelling stops the input)."""
        result = await self._pipeline.arun(
            data, on_progress=on_progress, progress_every=progress_every, on_reject=on_reject
        )
        return _unwrapped(result)

    def __repr__(self) -> str:
        return f"<FoldedPipeline {self.name!r}: {' >> '.join(s.name for s in self.stages)}>"


def _unwrapped(result: PipelineResult[list[Out]]) -> PipelineResult[Out]:
    """Replace the list of outputs by its only item: an aggregate yields exactly one."""
    (value,) = result.output
    return PipelineResult(value, result.rejects, result.stats, result.progress)
