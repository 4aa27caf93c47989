"""Table pages read through the database driver: the rows of a select, without SQLAlchemy's
execution layer on the way back.

A table page runs one statement, long-lived and already compiled (BaseRepository caches
its page statements by shape). Executing it through a SQLAlchemy Connection still costs
a request about 0.9 M instructions (11% of a first render of /items) beyond the driver's
own work: an execution context, the result's metadata, a Row and processors per row. On
PostgreSQL (psycopg) `fetch_rows` hands the statement's SQL, compiled once, and its
parameters to a cursor of the same pooled connection, in the same transaction or
autocommit read, and returns psycopg's named tuples: `row.id`, `row.name`, by position
too, as a SQLAlchemy Row.

It takes SQLAlchemy's path whenever the two could differ:

- another database or driver (SQLite in development and most tests);
- a statement whose SQL is finished only at execution (expanding IN lists, literal
  LIMITs) or whose result columns need converting: only times (`UTCDateTime`, already
  aware UTC on PostgreSQL, whose sessions run in UTC: app/core/sql.py) pass unconverted;
- a connection someone watches statement by statement (execute or cursor-execute
  listeners: tracing, the tests' write guard; `echo`), who must see it.

A driver error is handed to SQLAlchemy's own error handling, so it surfaces as the same
exception, runs the same `handle_error` hooks (the database breaker) and invalidates a
dead connection the same way.
"""

from __future__ import annotations

import keyword
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, cast

from sqlalchemy import Select
from sqlalchemy.engine import Compiled, Connection, Dialect

from app.models.base import as_utc

_PASSED_THROUGH = (None, as_utc)  # result processors that leave a PostgreSQL value as it is


@dataclass(frozen=True)
class _DriverRead:
    """A statement compiled for the driver: its SQL, how its parameters are bound, and
    the row factory of its named tuples (psycopg's own would look up or build the tuple
    class from the result's column names on every execution)."""

    compiled: Compiled
    sql: str
    bind_processors: Mapping[str, Callable[[Any], Any]]
    row_factory: Callable[[Any], Callable[[Any], Any]]


# Per statement object (page statements are long-lived, and shared by every engine of the
# process) and database (name, driver, whether its session is in UTC): its driver read,
# or None for "use SQLAlchemy".
# A few per table in practice; emptied if it ever grows past _MAX_READS, as the page
# statements' own cache is (app/repositories/base.py).
_READS: dict[Select[Any], dict[tuple[str, str, bool], _DriverRead | None]] = {}
_MAX_READS = 4096
_UNSEEN = object()
_IN_UTC = "driver_reads_in_utc"  # keys in a pooled connection's info
_CURSOR = "driver_reads_cursor"


def fetch_rows(connection: Connection, statement: Select[Any], params: dict[str, Any]) -> list[Any]:
    """Every row of `statement` with `params`: named tuples from the driver where it can,
    SQLAlchemy Rows otherwise (see the module docstring).

    A statement's first execution takes SQLAlchemy's path: its result says which types
    the columns came back as, which decides whether a column needs converting.
    """
    dialect = connection.dialect
    known = _READS.get(statement)
    if known is None:
        if len(_READS) >= _MAX_READS:
            _READS.clear()
        known = _READS[statement] = {}
    in_utc = _in_utc(connection)
    database = (dialect.name, dialect.driver, in_utc)
    read = known.get(database, _UNSEEN)
    if read is None or read is _UNSEEN or _watched(connection):
        result = connection.execute(statement, params)
        if read is _UNSEEN:
            known[database] = _compile(dialect, statement, result.cursor.description, in_utc)
        return list(result.all())
    assert isinstance(read, _DriverRead)
    args = cast(dict[str, Any], read.compiled.construct_params(params))
    for name, process in read.bind_processors.items():
        if name in args:
            args[name] = process(args[name])
    cursor = None
    try:
        cursor = _cursor(connection)
        cursor.row_factory = read.row_factory
        cursor.execute(read.sql, args)
        rows: list[Any] = cursor.fetchall()
        return rows
    except BaseException as error:  # noqa: BLE001 - as SQLAlchemy: it raises it again
        connection._handle_dbapi_exception(error, read.sql, args, cursor, None)


def _in_utc(connection: Connection) -> bool:
    """Whether the connection's session runs in UTC, asked once per pooled connection (its
    time zone is set when it connects: app/core/sql.py)."""
    kept = connection.info
    in_utc = kept.get(_IN_UTC)
    if in_utc is None:
        info = getattr(connection.connection.driver_connection, "info", None)
        in_utc = kept[_IN_UTC] = info is not None and getattr(info, "timezone", None) is UTC
    return bool(in_utc)


def _cursor(connection: Connection) -> Any:
    """The pooled connection's reading cursor, made once: a new cursor would set up its
    type loaders again for every page. Kept in the pool's record of the connection (one
    per record, replaced with the connection), and used only by the thread that has the
    connection checked out."""
    driver = connection.connection.driver_connection
    kept = connection.info.get(_CURSOR)
    if kept is None or kept.connection is not driver or kept.closed:
        kept = connection.info[_CURSOR] = driver.cursor()  # type: ignore[union-attr]
    return kept


def _watched(connection: Connection) -> bool:
    """Whether someone follows this connection's statements: listeners, or echo."""
    dispatch = connection.dispatch
    return bool(
        connection._echo
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or dispatch.before_execute
        or dispatch.after_execute
    )


def _compile(
    dialect: Dialect, statement: Select[Any], description: Any, in_utc: bool
) -> _DriverRead | None:
    """The driver read of `statement`, whose result had `description` (the driver's
    column types) on a connection whose session is (`in_utc`) or is not in UTC, or None
    when SQLAlchemy's path must run it."""
    if dialect.name != "postgresql" or dialect.driver != "psycopg" or description is None:
        return None
    compiled = statement.compile(dialect=dialect)
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None  # expanding IN lists and literal values are rendered per execution
    keys = list(statement.selected_columns.keys())  # a SQLAlchemy Row's attribute names
    names = [column.name for column in description]  # what psycopg's named tuples use
    if names != keys or len(set(keys)) != len(keys) or not all(map(_plain_name, keys)):
        return None  # psycopg's named tuples would rename them, or fail on a keyword
    for column, described in zip(statement.selected_columns, description, strict=True):
        convert = column.type.dialect_impl(dialect).result_processor(dialect, described.type_code)
        if convert not in _PASSED_THROUGH or (convert is as_utc and not in_utc):
            return None  # as_utc leaves a time alone only if it came back in UTC
    processors = cast(Mapping[str, Callable[[Any], Any]], compiled._bind_processors)
    make_row = cast(Any, namedtuple("Row", keys))._make  # names known only at run time
    return _DriverRead(compiled, compiled.string, dict(processors), lambda _cursor: make_row)


def _plain_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
