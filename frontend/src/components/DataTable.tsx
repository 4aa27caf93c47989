// DataTable<T>: one generic table for any list the API pages server-side. The parent owns
// the data (a query) and the URL state (useTableState); this renders sortable headers with
// aria-sort, a debounced search box, row selection, paging and page size, and the loading,
// empty and error states, with the same classes as the HTMX table (static/css/app.css).
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import type { ApiError } from "../api/errors";
import { PAGE_SIZES, type TableState } from "./useTableState";

export interface Column<T, S extends string> {
  key: string;
  header: string;
  render: (row: T) => ReactNode;
  /** The API's sort key for this column, when it sorts. */
  sort?: S;
  numeric?: boolean;
}

export interface DataTableProps<T, S extends string> {
  label: string;
  columns: readonly Column<T, S>[];
  rows: readonly T[] | undefined;
  rowKey: (row: T) => number;
  total: number;
  pages: number;
  state: TableState<S>;
  onChange: (change: Partial<TableState<S>>, options?: { replace?: boolean }) => void;
  loading: boolean;
  fetching?: boolean;
  error?: ApiError | undefined;
  onRetry?: () => void;
  searchLabel?: string;
  /** Rows that may be selected (all when omitted); selection is off without onSelect. */
  selectable?: (row: T) => boolean;
  selected?: ReadonlySet<number>;
  onSelect?: (next: Set<number>) => void;
  rowActions?: (row: T) => ReactNode;
  empty?: ReactNode;
  debounceMs?: number;
}

const ARIA_SORT = { asc: "ascending", desc: "descending" } as const;

export function DataTable<T, S extends string>(props: DataTableProps<T, S>) {
  const { columns, rows, state, onChange, rowKey, selected, onSelect, rowActions } = props;
  const selecting = onSelect !== undefined && selected !== undefined;
  const canSelect = (row: T) => props.selectable?.(row) ?? true;
  const selectableRows = (rows ?? []).filter(canSelect);
  const allSelected = selectableRows.length > 0 && selectableRows.every((r) => selected?.has(rowKey(r)));
  const colCount = columns.length + (selecting ? 1 : 0) + (rowActions ? 1 : 0);

  const sortBy = (key: S) => { onChange({ sort: key, dir: state.sort === key && state.dir === "asc" ? "desc" : "asc" }); };
  const toggle = (id: number) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    onSelect?.(next);
  };
  const toggleAll = () => {
    const next = new Set(selected);
    for (const row of selectableRows) {
      if (allSelected) next.delete(rowKey(row));
      else next.add(rowKey(row));
    }
    onSelect?.(next);
  };

  return (
    <div className={`card table-card${props.fetching ? " is-loading" : ""}`}>
      <SearchBox
        label={props.searchLabel ?? "Search"}
        value={state.q}
        delay={props.debounceMs ?? 300}
        onSearch={(q) => { onChange({ q }, { replace: true }); }}
      />
      <div className="mobile-sort" aria-label="Sort by">
        {columns
          .filter((c) => c.sort !== undefined)
          .map((c) => {
            const key = c.sort as S;
            const active = state.sort === key;
            return (
              <button key={c.key} type="button" className={`chip${active ? " is-sorted" : ""}`} onClick={() => { sortBy(key); }}>
                {c.header} {active ? (state.dir === "asc" ? "▲" : "▼") : ""}
              </button>
            );
          })}
      </div>
      <div className="datatable table-wrap" aria-busy={props.loading || props.fetching}>
        <table className="table stack items">
          <caption className="sr-only">{props.label}</caption>
          <thead>
            <tr>
              {selecting && (
                <th className="select-col" scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select every row on this page"
                    checked={allSelected}
                    disabled={selectableRows.length === 0}
                    onChange={toggleAll}
                  />
                </th>
              )}
              {columns.map((column) => {
                const key = column.sort;
                if (key === undefined) {
                  return (
                    <th key={column.key} scope="col" className={column.numeric ? "num" : undefined}>
                      {column.header}
                    </th>
                  );
                }
                const active = state.sort === key;
                return (
                  <th
                    key={column.key}
                    scope="col"
                    className={column.numeric ? "num" : undefined}
                    aria-sort={active ? ARIA_SORT[state.dir] : "none"}
                  >
                    <button type="button" className={`sort-link btn-link${active ? " is-sorted" : ""}`} onClick={() => { sortBy(key); }}>
                      {column.header}
                      <span className="sort-indicator" aria-hidden="true">
                        {active ? (state.dir === "asc" ? "▲" : "▼") : "↕"}
                      </span>
                    </button>
                  </th>
                );
              })}
              {rowActions && (
                <th className="actions-col" scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {props.error ? (
              <tr>
                <td colSpan={colCount}>
                  <div className="flash flash-error" role="alert">
                    {props.error.detail}{" "}
                    {props.onRetry && (
                      <button type="button" className="btn btn-sm btn-secondary" onClick={props.onRetry}>
                        Try again
                      </button>
                    )}
                  </div>
                </td>
              </tr>
            ) : props.loading && !rows ? (
              <tr>
                <td colSpan={colCount} className="empty" role="status">
                  Loading…
                </td>
              </tr>
            ) : rows && rows.length === 0 ? (
              <tr>
                <td colSpan={colCount} className="empty">
                  {props.empty ?? "Nothing to show."}
                </td>
              </tr>
            ) : (
              (rows ?? []).map((row) => {
                const id = rowKey(row);
                const actions = rowActions?.(row) ?? null;
                return (
                  <tr key={id}>
                    {selecting && (
                      <td className={`select-col${canSelect(row) ? "" : " is-empty"}`}>
                        {canSelect(row) && (
                          <label className="row-select">
                            <input
                              type="checkbox"
                              aria-label={`Select row ${id}`}
                              checked={selected.has(id)}
                              onChange={() => { toggle(id); }}
                            />
                            <span className="row-select-text" aria-hidden="true">Select</span>
                          </label>
                        )}
                      </td>
                    )}
                    {columns.map((column) => (
                      <td key={column.key} data-label={column.header} className={column.numeric ? "num" : "cell"}>
                        {column.render(row)}
                      </td>
                    ))}
                    {rowActions && (
                      <td data-label="Actions" className={actions === null ? "is-empty" : undefined}>
                        {actions !== null && <div className="row-actions">{actions}</div>}
                      </td>
                    )}
                  </tr>
                );
              })
            )}
          </tbody>
        </table>
      </div>
      <Pager total={props.total} pages={props.pages} state={state} onChange={onChange} />
    </div>
  );
}

function SearchBox(props: { label: string; value: string; delay: number; onSearch: (q: string) => void }) {
  const { value, delay, onSearch } = props;
  const [text, setText] = useState(value);
  const id = useId();
  const typed = useRef(false);
  // The URL changed under us (back/forward): show what it says.
  useEffect(() => {
    if (!typed.current) setText(value);
    typed.current = false;
  }, [value]);
  useEffect(() => {
    if (text === value) return;
    const timer = setTimeout(() => {
      typed.current = true;
      onSearch(text.trim());
    }, delay);
    return () => { clearTimeout(timer); };
  }, [text, value, delay, onSearch]);
  return (
    <form className="table-search" role="search" onSubmit={(e) => { e.preventDefault(); onSearch(text.trim()); }}>
      <label htmlFor={id} className="sr-only">{props.label}</label>
      <input id={id} type="search" placeholder={`${props.label}…`} value={text} maxLength={100} onChange={(e) => { setText(e.target.value); }} />
    </form>
  );
}

function Pager<S extends string>(props: {
  total: number;
  pages: number;
  state: TableState<S>;
  onChange: DataTableProps<unknown, S>["onChange"];
}) {
  const { total, pages, state, onChange } = props;
  const last = Math.max(pages, 1);
  const from = total === 0 ? 0 : (state.page - 1) * state.perPage + 1;
  const to = Math.min(state.page * state.perPage, total);
  const numbers = pageNumbers(state.page, last);
  const go = (page: number) => { onChange({ page }); };
  const sizeId = useId();
  return (
    <nav className="pager" aria-label="Pages">
      <p className="muted" aria-live="polite">
        {total === 0 ? "No rows" : `${from.toLocaleString()}–${to.toLocaleString()} of ${total.toLocaleString()}`}
      </p>
      <div className="pager-links">
        <button type="button" className="btn btn-sm btn-secondary" disabled={state.page <= 1} onClick={() => { go(1); }}>« First</button>
        <button type="button" className="btn btn-sm btn-secondary" disabled={state.page <= 1} onClick={() => { go(state.page - 1); }}>‹ Previous</button>
        <span className="page-numbers">
          {numbers.map((n, i) =>
            n === null ? (
              <span key={`gap-${i}`} className="gap">…</span>
            ) : (
              <button
                key={n}
                type="button"
                className={`btn btn-sm ${n === state.page ? "is-current" : "btn-secondary"}`}
                aria-current={n === state.page ? "page" : undefined}
                aria-label={`Page ${n}`}
                onClick={() => { go(n); }}
              >
                {n}
              </button>
            ),
          )}
        </span>
        <button type="button" className="btn btn-sm btn-secondary" disabled={state.page >= last} onClick={() => { go(state.page + 1); }}>Next ›</button>
        <button type="button" className="btn btn-sm btn-secondary" disabled={state.page >= last} onClick={() => { go(last); }}>Last »</button>
      </div>
      <div className="per-page">
        <label htmlFor={sizeId}>
          Rows per page
          <select id={sizeId} value={state.perPage} onChange={(e) => { onChange({ perPage: Number(e.target.value) }); }}>
            {PAGE_SIZES.map((size) => (
              <option key={size} value={size}>{size}</option>
            ))}
          </select>
        </label>
      </div>
    </nav>
  );
}

/** Page numbers around the current one, with gaps: 1 … 4 5 [6] 7 8 … 20. */
export function pageNumbers(current: number, last: number): (number | null)[] {
  const shown = new Set([1, last]);
  for (let n = current - 2; n <= current + 2; n++) if (n >= 1 && n <= last) shown.add(n);
  const sorted = [...shown].sort((a, b) => a - b);
  const out: (number | null)[] = [];
  sorted.forEach((n, i) => {
    const previous = sorted[i - 1];
    if (previous !== undefined && n - previous > 1) out.push(null);
    out.push(n);
  });
  return out;
}
