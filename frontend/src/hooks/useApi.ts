// useApi: the app's API calls, on RTK Query (see api/api.ts for caching, de-duplication,
// invalidation, retries and refresh). Errors come out as typed ApiError values, and a
// query nobody watches any more is aborted instead of finishing for nobody.
import { useEffect } from "react";
import { api } from "../api/api";
import { asApiError } from "../api/errors";
import type { ItemListParams } from "../api/types";
import { useAppDispatch } from "../store/store";

type QueryName = "listItems" | "me";

/** Abort the request of `endpoint(args)` once no component subscribes to it. */
export function useAbortWhenUnused(endpoint: QueryName, args: unknown): void {
  const dispatch = useAppDispatch();
  const key = JSON.stringify(args ?? null);
  useEffect(
    () => () => {
      const stale: unknown = JSON.parse(key);
      // After RTK Query's own unsubscribe (effects clean up in order) has been counted.
      setTimeout(() => {
        const running = dispatch(
          api.util.getRunningQueryThunk(endpoint, (stale ?? undefined) as never),
        );
        const subscribers = dispatch(api.util.getMiddlewareState());
        if (running && subscribers?.getSubscriptionCount(running.queryCacheKey) === 0) {
          running.abort();
        }
      }, 0);
    },
    [dispatch, endpoint, key],
  );
}

export function useItems(params: ItemListParams) {
  const result = api.useListItemsQuery(params);
  useAbortWhenUnused("listItems", params);
  return { ...result, error: asApiError(result.error) };
}

export function useMe(options: { skip?: boolean } = {}) {
  const result = api.useMeQuery(undefined, options);
  useAbortWhenUnused("me", undefined);
  return { ...result, error: asApiError(result.error) };
}

export const {
  useCreateItemMutation,
  useUpdateItemMutation,
  useDeleteItemMutation,
  useUpdateMeMutation,
  useChangePasswordMutation,
} = api;
