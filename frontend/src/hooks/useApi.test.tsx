// useApi on RTK Query, against msw: caching, de-duplication, invalidation after writes,
// 401 -> one refresh -> one retry -> sign out, and aborting what nobody watches.
import { act, screen, waitFor } from "@testing-library/react";
import { delay, http, HttpResponse } from "msw";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ItemListParams } from "../api/types";
import { item, page, problem, token } from "../test/fixtures";
import { renderApp } from "../test/render";
import { server } from "../test/server";
import { useCreateItemMutation, useItems } from "./useApi";

function Items({ params = { page: 1 }, label = "list" }: { params?: ItemListParams; label?: string }) {
  const { data, error } = useItems(params);
  if (error) return <p>{`${label}: error ${error.status} ${error.detail}`}</p>;
  return <p>{data ? `${label}: ${data.items.map((i) => i.name).join(",")}` : `${label}: loading`}</p>;
}

function countItems(answer: () => Response | Promise<Response> = () => HttpResponse.json(page([item(1)]))) {
  const seen: { url: string; auth: string | null }[] = [];
  server.use(
    http.get("/api/v1/items", ({ request }) => {
      seen.push({ url: request.url, auth: request.headers.get("Authorization") });
      return answer();
    }),
  );
  return seen;
}

function Toggle() {
  const [shown, setShown] = useState(true);
  return (
    <>
      <button onClick={() => { setShown((s) => !s); }}>toggle</button>
      {shown && <Items />}
    </>
  );
}

const toggle = () => { act(() => { screen.getByText("toggle").click(); }); };

afterEach(() => {
  vi.useRealTimers();
});

describe("useApi", () => {
  it("serves a second reader from the cache while the entry lives", async () => {
    const seen = countItems();
    renderApp(<Toggle />);
    await screen.findByText("list: Item 1");
    toggle();
    expect(screen.queryByText("list: Item 1")).toBeNull();
    toggle();
    expect(screen.getByText("list: Item 1")).toBeInTheDocument(); // straight from the cache
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toHaveLength(1);
  });

  it("keeps an answer nobody reads for 60 s, then asks the server again", async () => {
    const seen = countItems();
    renderApp(<Toggle />);
    await screen.findByText("list: Item 1");
    // Only the timeouts: RTK Query's removal timer starts when the last reader goes.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    toggle();
    act(() => { vi.advanceTimersByTime(59_000); });
    toggle();
    expect(screen.getByText("list: Item 1")).toBeInTheDocument(); // 59 s: still cached
    toggle();
    act(() => { vi.advanceTimersByTime(60_000); }); // the clock restarted at this unmount
    vi.useRealTimers(); // the request below runs on real timers (its timeout, msw)
    toggle();
    expect(screen.getByText("list: loading")).toBeInTheDocument(); // 60 s: dropped
    await screen.findByText("list: Item 1");
    expect(seen).toHaveLength(2);
  });

  it("sends one request for identical queries in flight, another for other arguments", async () => {
    const seen = countItems(async () => {
      await delay(30);
      return HttpResponse.json(page([item(1)]));
    });
    renderApp(
      <>
        <Items label="a" />
        <Items label="b" />
        <Items label="c" params={{ page: 2 }} />
      </>,
    );
    await screen.findByText("a: Item 1");
    await screen.findByText("b: Item 1");
    await screen.findByText("c: Item 1");
    expect(seen.map((s) => new URL(s.url).search).sort()).toEqual(["?page=1", "?page=2"]);
  });

  it("refetches the list after a write", async () => {
    let items = [item(1)];
    const seen = countItems(() => HttpResponse.json(page(items)));
    server.use(
      http.post("/api/v1/items", () => {
        items = [...items, item(2)];
        return HttpResponse.json(item(2), { status: 201 });
      }),
    );
    function Create() {
      const [create] = useCreateItemMutation();
      return <button onClick={() => void create({ name: "Item 2", price: "1.00" })}>create</button>;
    }
    renderApp(
      <>
        <Items />
        <Create />
      </>,
    );
    await screen.findByText("list: Item 1");
    act(() => { screen.getByText("create").click(); });
    await screen.findByText("list: Item 1,Item 2");
    expect(seen).toHaveLength(2);
  });

  it("on a 401 refreshes once, retries once with the new token, and carries on", async () => {
    let refreshes = 0;
    const seen = countItems();
    server.use(
      http.get("/api/v1/items", ({ request }) => {
        seen.push({ url: request.url, auth: request.headers.get("Authorization") });
        return request.headers.get("Authorization") === "Bearer fresh"
          ? HttpResponse.json(page([item(1)]))
          : HttpResponse.json(problem(401, "expired"), { status: 401 });
      }),
      http.post("/api/v1/auth/refresh", async () => {
        refreshes++;
        await delay(20);
        return HttpResponse.json(token("fresh"));
      }),
    );
    const { store } = renderApp(
      <>
        <Items label="a" />
        <Items label="b" params={{ page: 2 }} />
      </>,
      { token: "stale" },
    );
    await screen.findByText("a: Item 1");
    await screen.findByText("b: Item 1");
    expect(refreshes).toBe(1); // two 401s, one refresh
    expect(store.getState().auth.token).toBe("fresh");
    expect(seen.map((s) => s.auth)).toEqual(["Bearer stale", "Bearer stale", "Bearer fresh", "Bearer fresh"]);
  });

  it("signs out when the refresh cookie is no good", async () => {
    countItems(() => HttpResponse.json(problem(401, "expired"), { status: 401 }));
    server.use(http.post("/api/v1/auth/refresh", () => HttpResponse.json(problem(401, "ended"), { status: 401 })));
    const { store } = renderApp(<Items />, { token: "stale" });
    await screen.findByText("list: error 401 expired");
    expect(store.getState().auth).toMatchObject({ status: "signedOut", token: null, user: null });
    expect(store.getState().auth.notice).toMatch(/session has ended/);
  });

  it("signs out when the retried request is refused again", async () => {
    let refreshes = 0;
    countItems(() => HttpResponse.json(problem(401, "no"), { status: 401 }));
    server.use(
      http.post("/api/v1/auth/refresh", () => {
        refreshes++;
        return HttpResponse.json(token("fresh"));
      }),
    );
    const { store } = renderApp(<Items />, { token: "stale" });
    await screen.findByText("list: error 401 no");
    expect(refreshes).toBe(1);
    expect(store.getState().auth.status).toBe("signedOut");
  });

  it("aborts a request when its last reader unmounts, not before", async () => {
    const aborted: string[] = [];
    server.use(
      http.get("/api/v1/items", async ({ request }) => {
        const key = new URL(request.url).search;
        request.signal.addEventListener("abort", () => aborted.push(key));
        await delay(500);
        return HttpResponse.json(page([item(1)]));
      }),
    );
    function Two() {
      const [count, setCount] = useState(2);
      return (
        <>
          <button onClick={() => { setCount((c) => c - 1); }}>less</button>
          {count > 0 && <Items label="a" />}
          {count > 1 && <Items label="b" />}
        </>
      );
    }
    renderApp(<Two />);
    await screen.findByText("a: loading");
    act(() => { screen.getByText("less").click(); });
    await new Promise((r) => setTimeout(r, 20));
    expect(aborted).toEqual([]); // one reader left
    act(() => { screen.getByText("less").click(); });
    await waitFor(() => { expect(aborted).toEqual(["?page=1"]); });
  });
});
