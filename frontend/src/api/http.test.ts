// The retry schedule, on fake timers: which failures are retried, when, and how often.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { send } from "./http";

type Answer = { status: number; headers?: Record<string, string>; body?: unknown } | "network";

function stubFetch(answers: Answer[]) {
  const times: number[] = [];
  const start = Date.now();
  const fetchMock = vi.fn((_url: string, init?: RequestInit) => {
    times.push(Date.now() - start);
    const answer = answers.shift() ?? { status: 200, body: { ok: true } };
    if (answer === "network") return Promise.reject(new TypeError("Failed to fetch"));
    if (init?.signal?.aborted) return Promise.reject(new DOMException("aborted", "AbortError"));
    return Promise.resolve(
      new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
        status: answer.status,
        headers: { "Content-Type": "application/json", ...answer.headers },
      }),
    );
  });
  vi.stubGlobal("fetch", fetchMock);
  return { fetchMock, times };
}

async function settle<T>(promise: Promise<T>): Promise<T> {
  await vi.runAllTimersAsync();
  return promise;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("send", () => {
  it("backs off 500 ms, 1 s, 2 s on network errors and 5xx, then gives up", async () => {
    const { times } = stubFetch(["network", { status: 502 }, { status: 500 }, { status: 503 }]);
    const result = await settle(send({ url: "/items" }, "t"));
    expect(times).toEqual([0, 500, 1500, 3500]);
    expect(result.error?.status).toBe(503);
  });

  it("stops retrying as soon as an answer is good", async () => {
    const { times } = stubFetch([{ status: 500 }, { status: 200, body: { ok: 1 } }]);
    const result = await settle(send({ url: "/items" }, "t"));
    expect(times).toEqual([0, 500]);
    expect(result.data).toEqual({ ok: 1 });
  });

  it("waits what Retry-After says on 429 and 503", async () => {
    const { times } = stubFetch([
      { status: 429, headers: { "Retry-After": "3" } },
      { status: 503, headers: { "Retry-After": "1" } },
      { status: 200, body: {} },
    ]);
    await settle(send({ url: "/items" }, "t"));
    expect(times).toEqual([0, 3000, 4000]);
  });

  it("hands a Retry-After longer than 30 s to the caller instead of waiting", async () => {
    const { times } = stubFetch([{ status: 429, headers: { "Retry-After": "120" } }]);
    const result = await settle(send({ url: "/items" }, "t"));
    expect(times).toEqual([0]);
    expect(result.error).toMatchObject({ status: 429, retryAfter: 120 });
  });

  it.each([400, 401, 403, 404, 409, 422])("never retries a %i", async (status) => {
    const { times } = stubFetch([{ status, body: { title: "No", status, detail: "no", code: "x", instance: "/" } }]);
    const result = await settle(send({ url: "/items" }, "t"));
    expect(times).toEqual([0]);
    expect(result.error?.status).toBe(status);
  });

  it("retries a POST only when the server refused it before doing anything", async () => {
    const lost = stubFetch(["network", { status: 500 }]);
    await settle(send({ url: "/items", method: "POST", body: {} }, "t"));
    expect(lost.times).toEqual([0]); // it may have been created: do not create it twice
    const refused = stubFetch([{ status: 429, headers: { "Retry-After": "2" } }, { status: 201, body: {} }]);
    await settle(send({ url: "/items", method: "POST", body: {} }, "t"));
    expect(refused.times).toEqual([0, 2000]);
  });

  it("does not retry when told not to (sign-in shows the wait instead)", async () => {
    const { times } = stubFetch([{ status: 429, headers: { "Retry-After": "5" } }]);
    const result = await settle(send({ url: "/auth/login", method: "POST" }, null, { retry: false }));
    expect(times).toEqual([0]);
    expect(result.error?.retryAfter).toBe(5);
  });

  it("stops waiting when the caller aborts", async () => {
    const { times } = stubFetch([{ status: 503 }, { status: 503 }]);
    const controller = new AbortController();
    const promise = send({ url: "/items" }, "t", { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(100);
    controller.abort();
    await settle(promise);
    expect(times).toEqual([0]);
  });

  it("turns problem JSON into a typed error with its field messages", async () => {
    stubFetch([
      { status: 422, body: { title: "Invalid", status: 422, detail: "Fix it", code: "invalid", instance: "/", errors: { name: "Enter a name." } } },
    ]);
    const result = await settle(send({ url: "/items", method: "POST", body: {} }, "t"));
    expect(result.error).toEqual({
      status: 422,
      title: "Invalid",
      detail: "Fix it",
      code: "invalid",
      fields: { name: "Enter a name." },
      retryAfter: null,
    });
  });

  it("sends the bearer token and the query, leaving out empty values", async () => {
    const { fetchMock } = stubFetch([{ status: 200, body: {} }]);
    await settle(send({ url: "/items", params: { q: "", page: 2, sort: "name" } }, "abc"));
    const [url, init] = fetchMock.mock.calls[0] ?? [];
    expect(url).toBe("/api/v1/items?page=2&sort=name");
    expect((init?.headers as Record<string, string>).Authorization).toBe("Bearer abc");
  });
});
