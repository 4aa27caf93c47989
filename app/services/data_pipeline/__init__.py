"""A small framework for composable, streaming data pipelines (the seed's "Data Pipeline").

    pipeline = (
        Pipeline[dict[str, str], list[User]]("user_import")
        .add_stage(ValidateStage(validate_user_data))
        .add_stage(MapStage(transform_to_user))
        .add_stage(FilterStage(lambda u: u.is_active))
        .add_stage(BatchStage(100))
    )
    result = pipeline.run(rows)          # .output, .rejects, .stats, .progress

    # Streaming, a transaction per batch, and a progress bar:
    with pipeline.stream(rows, on_progress=bar.update, on_reject=errors.write) as batches:
        for batch in batches:            # one batch in memory at a time
            save_and_commit(batch)
            committed.append(batches.position)   # input row the batch started at

``pipeline.run(rows, sink=save_and_commit)`` does the same with a callback, and
``await pipeline.arun(rows)`` runs it from async code. Stages compose with
``>>``; invalid items become ``Reject`` records; failures raise a
``PipelineError`` naming the pipeline, the stage and the 0-based input position.

An aggregate at the end gives the value itself, and a branch one list per path:

    total = Pipeline[list[int], int]("total").add_stage(FlattenStage()).add_stage(
        AggregateStage(lambda subtotal, x: subtotal + x, 0)
    )                                    # a FoldedPipeline: one value, still streamed
    total.run([[1, 2], [3]]).output      # 6
    plus_one_total = MapStage(lambda x: x + 1) >> AggregateStage(operator.add, 0)
    both = Pipeline[int, list[int]]("both").add_stage(
        BranchStage(AggregateStage(operator.add, 0), plus_one_total)
    )
    both.run([1, 2, 3]).output           # [[6], [9]]: one list per path, in order

The framework imports nothing from the rest of the app.
"""

from app.services.data_pipeline.core import (
    ChainStage,
    PipelineError,
    PipelineStage,
    Progress,
    Reject,
    RunContext,
    StageStats,
    Tracked,
)
from app.services.data_pipeline.pipeline import (
    FoldedPipeline,
    Pipeline,
    PipelineResult,
    PipelineRun,
)
from app.services.data_pipeline.stages import (
    AggregateStage,
    BatchStage,
    BranchStage,
    FieldCheck,
    FilterStage,
    FlattenStage,
    MapStage,
    Problems,
    ValidateStage,
)

__all__ = [
    "AggregateStage",
    "BatchStage",
    "BranchStage",
    "ChainStage",
    "FieldCheck",
    "FilterStage",
    "FlattenStage",
    "FoldedPipeline",
    "MapStage",
    "Pipeline",
    "PipelineError",
    "PipelineResult",
    "PipelineRun",
    "PipelineStage",
    "Problems",
    "Progress",
    "Reject",
    "RunContext",
    "StageStats",
    "Tracked",
    "ValidateStage",
]
