// useApi's engine: RTK Query does the caching (per endpoint and arguments, kept
// `keepUnusedDataFor` seconds after the last user), de-duplicates identical requests in
// flight and refetches what a write invalidated. Our base query adds the bearer token,
// retries (api/http.ts) and the 401 -> one refresh -> one retry -> sign out rule.
import { createApi, type BaseQueryFn } from "@reduxjs/toolkit/query/react";
import type { ApiError } from "./errors";
import { send, type ApiRequest } from "./http";
import { SESSION_ENDED, type SessionGate } from "./session";
import { signedIn, signedOut, userUpdated, type AuthState } from "../store/authSlice";
import type {
  Item,
  ItemCreate,
  ItemListParams,
  ItemPage,
  ItemPatch,
  LoginRequest,
  PasswordChange,
  ProfilePatch,
  Token,
  User,
} from "./types";

export interface CallOptions {
  /** false: never retry (sign-in shows throttling to the user instead). */
  retry?: boolean;
  /** false: a 401 means what it says (wrong password), no refresh. */
  refresh?: boolean;
}

export interface StoreExtra {
  session: SessionGate;
}

export const baseQuery: BaseQueryFn<ApiRequest, unknown, ApiError, CallOptions> = async (
  request,
  api,
  extraOptions,
) => {
  const opts = (extraOptions as CallOptions | undefined) ?? {};
  const tokenNow = () => (api.getState() as { auth: AuthState }).auth.token;
  const options = { signal: api.signal, retry: opts.retry ?? true };
  const used = tokenNow();
  const first = await send(request, used, options);
  if (first.error?.status !== 401 || opts.refresh === false || api.signal.aborted) return first;
  const current = tokenNow();
  const token =
    current !== null && current !== used
      ? current // another request refreshed while this one was out
      : await (api.extra as StoreExtra).session.refresh(api.dispatch);
  if (token === null) return first;
  const second = await send(request, token, options);
  if (second.error?.status === 401) api.dispatch(signedOut(SESSION_ENDED));
  return second;
};

export const api = createApi({
  reducerPath: "api",
  baseQuery,
  tagTypes: ["Item", "Me"],
  keepUnusedDataFor: 60,
  endpoints: (build) => ({
    login: build.mutation<Token, LoginRequest>({
      query: (body) => ({ url: "/auth/login", method: "POST", body }),
      extraOptions: { retry: false, refresh: false },
      async onQueryStarted(_, { dispatch, queryFulfilled }) {
        const { data } = await queryFulfilled.catch(() => ({ data: null }));
        if (data) dispatch(signedIn(data));
      },
    }),
    logout: build.mutation<null, undefined>({
      query: () => ({ url: "/auth/logout", method: "POST" }),
      // An expired token refreshes first, so the sign-out still reaches the refresh family.
      extraOptions: { retry: false },
    }),
    me: build.query<User, undefined>({
      query: () => ({ url: "/me" }),
      providesTags: ["Me"],
    }),
    updateMe: build.mutation<User, ProfilePatch>({
      query: (body) => ({ url: "/me", method: "PATCH", body }),
      invalidatesTags: ["Me"],
      async onQueryStarted(_, { dispatch, queryFulfilled }) {
        const { data } = await queryFulfilled.catch(() => ({ data: null }));
        if (data) dispatch(userUpdated(data));
      },
    }),
    changePassword: build.mutation<Token, PasswordChange>({
      query: (body) => ({ url: "/me/password", method: "POST", body }),
      async onQueryStarted(_, { dispatch, queryFulfilled }) {
        const { data } = await queryFulfilled.catch(() => ({ data: null }));
        if (data) dispatch(signedIn(data)); // the old tokens ended; these are the new ones
      },
    }),
    listItems: build.query<ItemPage, ItemListParams>({
      query: (params) => ({ url: "/items", params }),
      providesTags: (page) => [
        { type: "Item", id: "LIST" },
        ...(page?.items ?? []).map((item) => ({ type: "Item" as const, id: item.id })),
      ],
    }),
    createItem: build.mutation<Item, ItemCreate>({
      query: (body) => ({ url: "/items", method: "POST", body }),
      invalidatesTags: [{ type: "Item", id: "LIST" }],
    }),
    updateItem: build.mutation<Item, { id: number; patch: ItemPatch }>({
      query: ({ id, patch }) => ({ url: `/items/${id}`, method: "PATCH", body: patch }),
      invalidatesTags: (_, __, { id }) => [{ type: "Item", id }, { type: "Item", id: "LIST" }],
    }),
    deleteItem: build.mutation<null, number>({
      query: (id) => ({ url: `/items/${id}`, method: "DELETE" }),
      invalidatesTags: [{ type: "Item", id: "LIST" }],
    }),
  }),
});
