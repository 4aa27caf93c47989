// A table's sort, direction, page, page size and search, kept in the URL's query string so
// reload, back/forward and shared links show the same rows (as on the HTMX pages).
import { useCallback, useMemo } from "react";
import { useSearchParams } from "react-router";

export type Direction = "asc" | "desc";
export const PAGE_SIZES = [10, 25, 50, 100] as const;

export interface TableState<S extends string> {
  sort: S;
  dir: Direction;
  page: number;
  perPage: number;
  q: string;
}

export interface TableDefaults<S extends string> {
  sort: S;
  dir: Direction;
  perPage: number;
  sorts: readonly S[];
}

function positive(raw: string | null, fallback: number, max: number): number {
  const value = raw !== null && /^\d+$/.test(raw) ? Number(raw) : fallback;
  return value >= 1 && value <= max ? value : fallback;
}

/** The state a query string describes; unknown or out-of-range values get the defaults. */
export function parseTableState<S extends string>(
  params: URLSearchParams,
  defaults: TableDefaults<S>,
): TableState<S> {
  const sort = params.get("sort");
  const dir = params.get("dir");
  const perPage = positive(params.get("per_page"), defaults.perPage, 100);
  return {
    sort: defaults.sorts.includes(sort as S) ? (sort as S) : defaults.sort,
    dir: dir === "asc" || dir === "desc" ? dir : defaults.dir,
    page: positive(params.get("page"), 1, 10000),
    perPage: (PAGE_SIZES as readonly number[]).includes(perPage) ? perPage : defaults.perPage,
    q: (params.get("q") ?? "").slice(0, 100),
  };
}

/** Read the state from the URL; `update` writes a change back (a new history entry). */
export function useTableState<S extends string>(defaults: TableDefaults<S>) {
  const [params, setParams] = useSearchParams();
  const state = useMemo(() => parseTableState(params, defaults), [params, defaults]);

  const update = useCallback(
    (change: Partial<TableState<S>>, options: { replace?: boolean } = {}) => {
      setParams(
        (current) => {
          const next = new URLSearchParams(current);
          const merged = { ...parseTableState(current, defaults), ...change };
          // Anything but a page change starts again at page 1.
          if (!("page" in change)) merged.page = 1;
          const entries: [string, string, string][] = [
            ["sort", merged.sort, defaults.sort],
            ["dir", merged.dir, defaults.dir],
            ["page", String(merged.page), "1"],
            ["per_page", String(merged.perPage), String(defaults.perPage)],
            ["q", merged.q, ""],
          ];
          for (const [name, value, fallback] of entries) {
            if (value === fallback) next.delete(name);
            else next.set(name, value);
          }
          return next;
        },
        { replace: options.replace ?? false },
      );
    },
    [setParams, defaults],
  );

  return [state, update] as const;
}
