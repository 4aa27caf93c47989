"""The data pipeline framework: stages, composition, branching, errors, streaming, progress."""

from __future__ import annotations

import asyncio
import itertools
import operator
import pickle
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from app.services.data_pipeline import (
    AggregateStage,
    BatchStage,
    BranchStage,
    ChainStage,
    FieldCheck,
    FilterStage,
    FlattenStage,
    MapStage,
    Pipeline,
    PipelineError,
    PipelineStage,
    Progress,
    Reject,
    RunContext,
    Tracked,
    ValidateStage,
)


def run_stage(stage: PipelineStage[Any, Any], data: list[Any]) -> list[Any]:
    return Pipeline[Any, Any]("test").add_stage(stage).run(data).output


def boom(x: int) -> int:
    if x == 3:
        raise ZeroDivisionError("no threes")
    return x


class Counted:
    """An input that records how many items were pulled from it."""

    def __init__(self, source: Iterator[int]) -> None:
        self.source = source
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        for value in self.source:
            self.pulled += 1
            yield value


# --- the seed's example --------------------------------------------------------


@dataclass
class User:
    email: str
    is_active: bool


def validate_user_data(row: dict[str, str]) -> list[tuple[str, str]]:
    return [] if "@" in row.get("email", "") else [("email", "is not an email address")]


def transform_to_user(row: dict[str, str]) -> User:
    return User(email=row["email"], is_active=row["active"] == "yes")


def test_seed_example_runs_as_written() -> None:
    # Verbatim from the seed. Type arguments are not checked at runtime; for mypy,
    # In is one input item, so the typed spelling is Pipeline[dict[str, str], list[User]].
    pipeline = (
        Pipeline[list[dict], list[User]]("user_import")  # type: ignore[type-arg]
        .add_stage(ValidateStage(validate_user_data))
        .add_stage(MapStage(transform_to_user))
        .add_stage(FilterStage(lambda u: u.is_active))
        .add_stage(BatchStage(100))
    )
    rows = [{"email": f"u{i}@example.com", "active": "yes" if i % 2 else "no"} for i in range(300)]
    rows[5] = {"email": "nope", "active": "yes"}

    result = pipeline.run(rows)

    assert [len(batch) for batch in result.output] == [100, 49]
    assert result.output[0][0] == User("u1@example.com", True)
    assert result.rejects == (
        Reject(5, "email", "is not an email address", rows[5], "validate(validate_user_data)"),
    )
    assert [(s.name, s.items_in, s.items_out) for s in result.stats] == [
        ("validate(validate_user_data)", 300, 299),
        ("map(transform_to_user)", 299, 299),
        ("filter(<lambda>)", 299, 149),
        ("batch(100)", 149, 2),
    ]
    assert result.progress == Progress(300, 2, 1, done=True)
    assert not result.ok


# --- one test per stage, literal in and out ---------------------------------------


def test_map_transforms_each_item() -> None:
    assert run_stage(MapStage(lambda x: x * 2), [1, 2, 3]) == [2, 4, 6]


def test_filter_keeps_items_that_pass() -> None:
    assert run_stage(FilterStage(lambda x: x % 2 == 0), [1, 2, 3, 4]) == [2, 4]


def test_batch_groups_items_and_keeps_the_remainder() -> None:
    assert run_stage(BatchStage(2), [1, 2, 3, 4, 5]) == [[1, 2], [3, 4], [5]]
    assert run_stage(BatchStage(2), []) == []


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BatchStage(0)


def test_flatten_removes_one_level() -> None:
    assert run_stage(FlattenStage(), [[1, 2], [], [3, [4]]]) == [1, 2, 3, [4]]


def test_aggregate_folds_to_one_value() -> None:
    assert run_stage(AggregateStage(operator.add, 0), [1, 2, 3]) == 6
    assert run_stage(AggregateStage(operator.add, 0), []) == 0


def test_aggregate_copies_a_mutable_initial_value_per_run() -> None:
    def collect(acc: list[int], x: int) -> list[int]:
        acc.append(x)
        return acc

    pipeline = Pipeline[int, list[int]]("collect").add_stage(AggregateStage(collect, []))

    assert pipeline.run([1, 2]).output == [1, 2]
    assert pipeline.run([3]).output == [3]


def test_a_final_aggregate_returns_the_folded_value_itself() -> None:
    # As the issue writes it. In names one input item, so mypy's spelling is
    # Pipeline[list[int], int]; the last add_stage returns a FoldedPipeline.
    total = (
        Pipeline[list[list[int]], int]("total")
        .add_stage(FlattenStage())
        .add_stage(AggregateStage(operator.add, 0))
    )

    result = total.run([[1, 2], [3]])

    assert result.output == 6
    assert [(s.name, s.items_in, s.items_out) for s in result.stats] == [
        ("flatten", 2, 3),
        ("aggregate(add)", 3, 1),
    ]
    assert result.progress == Progress(2, 1, 0, done=True)


def test_pipeline_rshift_aggregate_folds_and_leaves_the_pipeline_a_stream() -> None:
    evens = Pipeline[int, int]("evens").add_stage(FilterStage(lambda x: x % 2 == 0))
    count = evens >> AggregateStage(lambda n, _: n + 1, 0)

    assert count.run(range(10)).output == 5
    assert evens.run(range(5)).output == [0, 2, 4]


def test_only_a_final_aggregate_folds() -> None:
    def add_pair(acc: tuple[int, int], x: int) -> tuple[int, int]:
        return acc[0] + x, acc[1] + 1

    mean = AggregateStage(add_pair, (0, 0)) >> MapStage(lambda pair: pair[0] / pair[1])
    pipeline = Pipeline[int, float]("mean").add_stage(mean)

    assert pipeline.run([1, 2, 6]).output == [3.0]


def test_the_pipeline_add_stage_was_called_on_keeps_its_stream_type() -> None:
    pipeline = Pipeline[int, int]("p")
    folded = pipeline.add_stage(AggregateStage(operator.add, 0))

    assert folded.run([1, 2, 3]).output == 6
    assert pipeline.run([1, 2, 3]).output == [6]


def test_a_fold_streams_its_input_reports_progress_and_rejects() -> None:
    rows = Counted(iter(range(100_000)))
    reports: list[Progress] = []
    pipeline = (
        Pipeline[int, int]("total")
        .add_stage(ValidateStage(lambda x: x % 1000 != 7))
        .add_stage(AggregateStage(operator.add, 0))
    )

    result = pipeline.run(rows, on_progress=reports.append, progress_every=25_000)

    assert result.output == sum(x for x in range(100_000) if x % 1000 != 7)
    assert [r.position for r in result.rejects[:2]] == [7, 1007]
    assert reports == [
        Progress(25_000, 0, 25),
        Progress(50_000, 0, 50),
        Progress(75_000, 0, 75),
        Progress(100_000, 0, 100),
        Progress(100_000, 1, 100, done=True),
    ]


def test_arun_folds_async_input_and_cancelling_stops_reading() -> None:
    async def rows() -> AsyncIterator[int]:
        for i in range(4):
            await asyncio.sleep(0)
            yield i

    endless = Counted(itertools.count())

    def slow(x: int) -> int:
        time.sleep(0.001)
        return x

    async def main() -> int:
        total = Pipeline[int, int]("total").add_stage(AggregateStage(operator.add, 0))
        result = await total.arun(rows())
        slow_total = (
            Pipeline[int, int]("slow total")
            .add_stage(MapStage(slow))
            .add_stage(AggregateStage(operator.add, 0))
        )
        task = asyncio.create_task(slow_total.arun(endless))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return result.output

    assert asyncio.run(main()) == 6
    pulled = endless.pulled
    time.sleep(0.02)
    assert endless.pulled == pulled


def test_validate_with_a_function_reports_rejects_with_positions() -> None:
    def rules(row: dict[str, Any]) -> list[tuple[str, str]]:
        problems = []
        if not row.get("name"):
            problems.append(("name", "is required"))
        if row.get("age", 0) < 0:
            problems.append(("age", "must not be negative"))
        return problems

    rows: list[dict[str, Any]] = [{"name": "a", "age": 1}, {"name": "", "age": -1}, {"name": "c"}]
    result = Pipeline[dict[str, Any], dict[str, Any]]("v").add_stage(ValidateStage(rules)).run(rows)

    assert result.output == [rows[0], rows[2]]
    assert [(r.position, r.field, r.reason) for r in result.rejects] == [
        (1, "name", "is required"),
        (1, "age", "must not be negative"),
    ]
    assert result.rejects[0].item is rows[1]
    assert result.progress.rejected == 1


def test_validate_accepts_bool_and_mapping_results() -> None:
    assert run_stage(ValidateStage(lambda x: x > 0), [1, -1, 2]) == [1, 2]
    pipeline = Pipeline[int, int]("v").add_stage(
        ValidateStage(lambda x: {"x": "too big"} if x > 9 else None)
    )
    result = pipeline.run([5, 10])
    assert result.output == [5]
    assert [(r.position, r.field, r.reason) for r in result.rejects] == [(1, "x", "too big")]


def test_validate_with_field_rules() -> None:
    rules: dict[str, FieldCheck] = {
        "email": (lambda v: "@" in v, "is not an email address"),
        "age": lambda v: int(v) >= 0,  # int("x") raises ValueError: reported, not raised
    }
    rows: list[dict[str, Any]] = [
        {"email": "a@b.c", "age": "3"},
        {"email": "abc", "age": "x"},
        {"age": "4"},
    ]
    result = Pipeline[dict[str, Any], dict[str, Any]]("v").add_stage(ValidateStage(rules)).run(rows)

    assert result.output == [rows[0]]
    assert [(r.position, r.field, r.reason) for r in result.rejects] == [
        (1, "email", "is not an email address"),
        (1, "age", "invalid literal for int() with base 10: 'x'"),
        (2, "email", "is missing"),
    ]


def test_field_rules_read_attributes_of_objects() -> None:
    stage = ValidateStage({"email": (lambda v: "@" in v, "bad email")})
    result = Pipeline[User, User]("v").add_stage(stage).run([User("x", True), User("a@b", True)])

    assert result.output == [User("a@b", True)]
    assert [(r.position, r.field, r.reason) for r in result.rejects] == [(0, "email", "bad email")]


def test_reject_positions_are_positions_in_the_pipeline_input() -> None:
    pipeline = (
        Pipeline[int, int]("p")
        .add_stage(FilterStage(lambda x: x != 1))
        .add_stage(ValidateStage(lambda x: x != 3))
    )
    result = pipeline.run([0, 1, 2, 3, 4])

    assert result.output == [0, 2, 4]
    assert [r.position for r in result.rejects] == [3]


# --- composition -------------------------------------------------------------------


def test_stage_rshift_stage_makes_a_composite_stage() -> None:
    def double(x: int) -> int:
        return x * 2

    def is_big(x: int) -> bool:
        return x > 2

    double_then_keep_big = MapStage(double) >> FilterStage(is_big)

    assert isinstance(double_then_keep_big, ChainStage)
    assert double_then_keep_big.name == "map(double) >> filter(is_big)"
    assert run_stage(double_then_keep_big, [1, 2, 3]) == [4, 6]


def test_composites_are_flattened_so_each_stage_has_stats() -> None:
    pipeline = Pipeline[int, list[int]]("p").add_stage(
        MapStage(lambda x: x + 1, name="inc") >> (FilterStage(bool, name="f") >> BatchStage(2))
    )
    result = pipeline.run([-1, 0, 1])

    assert result.output == [[1, 2]]
    assert [s.name for s in result.stats] == ["inc", "f", "batch(2)"]


def test_pipeline_rshift_stage_appends_into_a_new_pipeline() -> None:
    base = Pipeline[int, int]("p").add_stage(MapStage(lambda x: x + 1))
    extended = base >> MapStage(lambda x: x * 10)

    assert extended.run([1, 2]).output == [20, 30]
    assert base.run([1, 2]).output == [2, 3]
    assert extended.name == "p"


def test_a_pipeline_can_be_used_as_a_stage() -> None:
    inner = Pipeline[int, int]("inner").add_stage(MapStage(lambda x: x * 3))
    outer = Pipeline[int, list[int]]("outer").add_stage(inner.as_stage()).add_stage(BatchStage(5))

    assert outer.run([1, 2]).output == [[3, 6]]


# --- branches ----------------------------------------------------------------------


def test_branch_returns_path_results_in_declared_order() -> None:
    def slow(x: int) -> str:
        time.sleep(0.05)
        return f"slow {x}"

    branch = BranchStage(MapStage(slow), MapStage(lambda x: x * 10), FilterStage(lambda x: x > 1))

    assert run_stage(branch, [1, 2]) == [["slow 1", "slow 2"], [10, 20], [2]]


def test_branch_paths_may_be_chains() -> None:
    branch = BranchStage(MapStage(len) >> MapStage(str), FlattenStage())

    assert run_stage(branch, [[1, 2]]) == [["2"], [1, 2]]


def test_branch_runs_blocking_paths_in_parallel_threads() -> None:
    def nap(x: int) -> int:
        time.sleep(0.2)
        return x

    started = time.perf_counter()
    output = run_stage(BranchStage(MapStage(nap), MapStage(nap)), [7])
    elapsed = time.perf_counter() - started

    assert output == [[7], [7]]
    assert elapsed < 0.35


def test_branch_runs_async_paths_concurrently_as_tasks() -> None:
    async def nap(x: int) -> int:
        await asyncio.sleep(0.2)
        return x + 1

    started = time.perf_counter()
    output = run_stage(BranchStage(MapStage(nap), MapStage(nap)), [1])
    elapsed = time.perf_counter() - started

    assert output == [[2], [2]]
    assert elapsed < 0.35


def test_branch_of_two_aggregates_gives_one_list_per_path() -> None:
    total = AggregateStage(operator.add, 0)
    total_plus_one_each = MapStage(lambda x: x + 1) >> AggregateStage(operator.add, 0)

    assert run_stage(BranchStage(total, total_plus_one_each), [1, 2, 3]) == [[6], [9]]


def test_branch_over_no_input_still_gives_one_list_per_path() -> None:
    branch = BranchStage(AggregateStage(operator.add, 0), MapStage(str))

    assert run_stage(branch, []) == [[0], []]


def test_branch_reads_its_input_once_in_step_and_reports_progress() -> None:
    rows = Counted(iter(range(10_000)))
    ahead: list[int] = []
    reports: list[Progress] = []

    def note(x: int) -> int:
        ahead.append(rows.pulled - x)  # how far the reader is ahead of this path
        return x

    pipeline = Pipeline[int, list[int]]("p").add_stage(
        BranchStage(MapStage(note) >> AggregateStage(operator.add, 0), FilterStage(lambda x: x < 3))
    )
    result = pipeline.run(rows, on_progress=reports.append, progress_every=1000)

    assert result.output == [[sum(range(10_000))], [0, 1, 2]]
    assert rows.pulled == 10_000
    assert max(ahead) <= 3  # its item, one in its slot, one the reader holds
    assert reports[0] == Progress(items_in=1000, items_out=0, rejected=0)
    assert reports[-1] == Progress(items_in=10_000, items_out=2, rejected=0, done=True)


def test_a_failing_path_stops_the_branch_reading_an_endless_input() -> None:
    pipeline = Pipeline[int, Any]("p").add_stage(
        BranchStage(AggregateStage(operator.add, 0), MapStage(boom))
    )

    with pytest.raises(PipelineError) as caught:
        pipeline.run(itertools.count())

    assert (caught.value.stage, caught.value.position) == ("branch[1]/map(boom)", 3)


def test_a_failing_branch_path_is_named_in_the_error() -> None:
    pipeline = Pipeline[int, Any]("p").add_stage(BranchStage(MapStage(str), MapStage(boom)))

    with pytest.raises(PipelineError) as caught:
        pipeline.run([1, 2, 3])

    assert caught.value.stage == "branch[1]/map(boom)"
    assert caught.value.position == 2


def test_branch_needs_a_path() -> None:
    with pytest.raises(ValueError, match="at least one path"):
        BranchStage()


# --- errors --------------------------------------------------------------------------


def test_stage_exception_becomes_pipeline_error_with_cause() -> None:
    pipeline = Pipeline[int, int]("numbers").add_stage(FilterStage(bool)).add_stage(MapStage(boom))

    with pytest.raises(PipelineError) as caught:
        pipeline.run([0, 1, 2, 3, 4])

    error = caught.value
    assert (error.pipeline, error.stage, error.position) == ("numbers", "map(boom)", 3)
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert str(error) == (
        "pipeline 'numbers' failed in stage 'map(boom)' at item 3: ZeroDivisionError: no threes"
    )


def test_failing_input_iterator_is_named_input() -> None:
    def rows() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    with pytest.raises(PipelineError) as caught:
        Pipeline[int, int]("p").add_stage(MapStage(str)).run(rows())

    assert (caught.value.stage, caught.value.position) == ("input", 1)
    assert isinstance(caught.value.__cause__, OSError)


def test_a_sink_gets_each_batch_and_a_failing_batch_is_reported() -> None:
    committed: list[list[int]] = []

    def commit(batch: list[int]) -> None:
        if 5 in batch:
            raise RuntimeError("constraint violated")
        committed.append(batch)

    pipeline = Pipeline[int, list[int]]("import").add_stage(BatchStage(2))

    with pytest.raises(PipelineError) as caught:
        pipeline.run(range(10), sink=commit)

    assert committed == [[0, 1], [2, 3]]
    assert (caught.value.stage, caught.value.position) == ("sink", 4)


def test_a_sink_replaces_collecting_and_is_timed() -> None:
    seen: list[list[int]] = []
    result = Pipeline[int, list[int]]("p").add_stage(BatchStage(2)).run(range(3), sink=seen.append)

    assert seen == [[0, 1], [2]]
    assert result.output == []
    assert [(s.name, s.items_in, s.items_out) for s in result.stats][-1] == ("sink", 2, 2)


def test_custom_stage_errors_are_wrapped_too() -> None:
    class Explode(PipelineStage[int, int]):
        def __init__(self) -> None:
            super().__init__(name="explode")

        def process(self, items: Iterator[Tracked[int]], ctx: RunContext) -> Iterator[Tracked[int]]:
            for item in items:
                if item.value == 1:
                    raise KeyError("one")
                yield item

    with pytest.raises(PipelineError) as caught:
        Pipeline[int, int]("p").add_stage(Explode()).run([0, 1])

    assert (caught.value.stage, caught.value.position) == ("explode", 1)


# --- streaming -------------------------------------------------------------------------


def test_stream_reads_only_what_the_consumer_asks_for() -> None:
    rows = Counted(itertools.count())
    pipeline = Pipeline[int, list[int]]("p").add_stage(MapStage(lambda x: x * 2))
    pipeline.add_stage(BatchStage(100))

    with pipeline.stream(rows) as batches:
        first = next(batches)
        assert first == [x * 2 for x in range(100)]
        assert rows.pulled == 100
        assert batches.position == 0
        next(batches)
        assert batches.position == 100
        assert rows.pulled == 200


def test_stream_over_a_trillion_items_consumed_partially() -> None:
    huge = (i for i in range(10**12))
    pipeline = (
        Pipeline[int, list[int]]("huge")
        .add_stage(ValidateStage(lambda x: x % 10 != 0))
        .add_stage(FilterStage(lambda x: x % 2 == 1))
        .add_stage(BatchStage(1000))
    )

    with pipeline.stream(huge) as batches:
        taken = list(itertools.islice(batches, 3))
        progress = batches.progress
        rejected = len(batches.rejects)

    assert [len(batch) for batch in taken] == [1000, 1000, 1000]
    assert taken[0][:3] == [1, 3, 5]
    assert progress.items_in == 6000
    assert progress.items_out == 3
    assert rejected == 600


def test_stream_closes_its_stages_when_abandoned() -> None:
    closed: list[str] = []

    class Tracking(PipelineStage[int, int]):
        def __init__(self) -> None:
            super().__init__(name="tracking")

        def process(self, items: Iterator[Tracked[int]], ctx: RunContext) -> Iterator[Tracked[int]]:
            try:
                yield from items
            finally:
                closed.append("closed")

    with Pipeline[int, int]("p").add_stage(Tracking()).stream(itertools.count()) as outputs:
        next(outputs)

    assert closed == ["closed"]


# --- progress and stats ---------------------------------------------------------------


def test_progress_is_reported_through_a_callback() -> None:
    reports: list[Progress] = []
    pipeline = (
        Pipeline[int, list[int]]("p")
        .add_stage(ValidateStage(lambda x: x != 2))
        .add_stage(BatchStage(2))
    )

    pipeline.run(range(5), on_progress=reports.append, progress_every=2)

    assert reports == [
        Progress(items_in=2, items_out=0, rejected=0),
        Progress(items_in=4, items_out=1, rejected=1),
        Progress(items_in=5, items_out=2, rejected=1, done=True),
    ]


def test_progress_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="progress_every"):
        Pipeline[int, int]("p").run([1], progress_every=0)


def test_stats_time_each_stage_without_its_upstream() -> None:
    def slow(x: int) -> int:
        time.sleep(0.02)
        return x

    pipeline = (
        Pipeline[int, int]("p")
        .add_stage(MapStage(slow))
        .add_stage(MapStage(lambda x: x, name="fast"))
    )
    slow_stats, fast_stats = pipeline.run(range(5)).stats

    assert slow_stats.seconds >= 0.09
    assert fast_stats.seconds < 0.05


def test_stats_do_not_charge_input_reading_to_the_first_stage() -> None:
    def slow_rows() -> Iterator[int]:
        for i in range(5):
            time.sleep(0.02)
            yield i

    (stats,) = Pipeline[int, int]("p").add_stage(MapStage(lambda x: x)).run(slow_rows()).stats

    assert stats.seconds < 0.05


# --- async --------------------------------------------------------------------------------


def test_sync_run_awaits_async_functions() -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert run_stage(MapStage(double), [1, 2]) == [2, 4]


def test_arun_uses_the_callers_loop_and_accepts_async_input() -> None:
    async def rows() -> AsyncIterator[int]:
        for i in range(4):
            await asyncio.sleep(0)
            yield i

    async def main() -> tuple[list[int], bool]:
        loop = asyncio.get_running_loop()
        seen_loops: list[bool] = []

        async def plus_one(x: int) -> int:
            seen_loops.append(asyncio.get_running_loop() is loop)
            return x + 1

        pipeline = Pipeline[int, int]("a").add_stage(MapStage(plus_one))
        result = await pipeline.arun(rows())
        return result.output, all(seen_loops)

    assert asyncio.run(main()) == ([1, 2, 3, 4], True)


def test_arun_wraps_errors_like_run() -> None:
    with pytest.raises(PipelineError) as caught:
        asyncio.run(Pipeline[int, int]("a").add_stage(MapStage(boom)).arun([1, 2, 3]))

    assert (caught.value.stage, caught.value.position) == ("map(boom)", 2)


def test_private_event_loop_is_stopped_after_the_run() -> None:
    async def same(x: int) -> int:
        return x

    run_stage(MapStage(same), [1])

    assert not [t for t in threading.enumerate() if t.name == "pipeline-loop"]


def test_cancelling_arun_stops_reading_input() -> None:
    rows = Counted(itertools.count())

    def slow(x: int) -> int:
        time.sleep(0.001)
        return x

    async def main() -> None:
        pipeline = Pipeline[int, int]("endless").add_stage(MapStage(slow))
        task = asyncio.create_task(pipeline.arun(rows))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())  # returns only once the worker thread has stopped
    pulled = rows.pulled
    time.sleep(0.02)
    assert rows.pulled == pulled


# --- rejects without memory growth, and errors that travel ------------------------------


def test_on_reject_receives_rejects_instead_of_keeping_them() -> None:
    received: list[Reject] = []
    pipeline = Pipeline[int, int]("p").add_stage(ValidateStage(lambda x: x % 2 == 0))

    result = pipeline.run(range(5), on_reject=received.append)

    assert result.output == [0, 2, 4]
    assert result.rejects == ()
    assert [r.position for r in received] == [1, 3]
    assert result.progress.rejected == 2


def test_a_failing_progress_callback_is_named() -> None:
    def broken(progress: Progress) -> None:
        raise RuntimeError("bar crashed")

    with pytest.raises(PipelineError) as caught:
        Pipeline[int, int]("p").run([1], on_progress=broken, progress_every=1)

    assert (caught.value.stage, caught.value.position) == ("on_progress", None)
    assert str(caught.value) == (
        "pipeline 'p' failed in stage 'on_progress': RuntimeError: bar crashed"
    )


def test_pipeline_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(PipelineError("import", "map(f)", 7)))

    assert (error.pipeline, error.stage, error.position) == ("import", "map(f)", 7)
