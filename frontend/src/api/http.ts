// The one place requests are sent: JSON in and out, the bearer token, problem JSON turned
// into ApiError, and retries with exponential backoff that honour Retry-After.
import { networkError, parseRetryAfter, problemError, type ApiError } from "./errors";

export const API_ROOT = "/api/v1";

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

export interface ApiRequest {
  url: string;
  method?: Method;
  body?: unknown;
  params?: Record<string, string | number | undefined>;
}

export type ApiResult<T = unknown> = { data: T; error?: undefined } | { error: ApiError; data?: undefined };

export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** First backoff; doubled each retry (500 ms, 1 s, 2 s, ...). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the error goes to the caller. */
  maxRetryAfterSeconds: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxRetries: 3,
  baseDelayMs: 500,
  maxDelayMs: 8000,
  maxRetryAfterSeconds: 30,
};

/** Safe to send twice: a lost answer may mean the server did the work already. */
const IDEMPOTENT: ReadonlySet<Method> = new Set<Method>(["GET", "PATCH", "DELETE"]);

export function buildUrl(url: string, params?: ApiRequest["params"]): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return `${API_ROOT}${url}${text ? `?${text}` : ""}`;
}

/** One attempt; never throws. */
export async function sendOnce<T>(
  request: ApiRequest,
  token: string | null,
  signal?: AbortSignal,
): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { Accept: "application/json, application/problem+json" };
  if (request.body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(buildUrl(request.url, request.params), {
      method: request.method ?? "GET",
      headers,
      body: request.body === undefined ? null : JSON.stringify(request.body),
      credentials: "same-origin",
      signal: signal ?? null,
    });
  } catch {
    if (signal?.aborted) return { error: { ...networkError("The request was cancelled."), code: "aborted" } };
    return { error: networkError() };
  }
  const body: unknown = await response.json().catch(() => null);
  if (response.ok) return { data: body as T };
  return { error: problemError(response.status, body, parseRetryAfter(response.headers.get("Retry-After"))) };
}

/** How long to wait before retry number `attempt` (0-based), or null for "do not retry". */
export function retryDelay(
  error: ApiError,
  method: Method,
  attempt: number,
  policy: RetryPolicy = DEFAULT_RETRY,
): number | null {
  if (attempt >= policy.maxRetries || error.code === "aborted") return null;
  const refusedBeforeWork = error.status === 429 || error.status === 503;
  const lostOrFailed = error.status === 0 || error.status >= 500;
  if (!refusedBeforeWork && !(lostOrFailed && IDEMPOTENT.has(method))) return null;
  if (error.retryAfter !== null) {
    return error.retryAfter <= policy.maxRetryAfterSeconds ? error.retryAfter * 1000 : null;
  }
  return Math.min(policy.baseDelayMs * 2 ** attempt, policy.maxDelayMs);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Send, retrying network errors, 5xx and 429 with backoff (see retryDelay). */
export async function send<T>(
  request: ApiRequest,
  token: string | null,
  options: { signal?: AbortSignal; retry?: boolean; policy?: RetryPolicy } = {},
): Promise<ApiResult<T>> {
  const method = request.method ?? "GET";
  for (let attempt = 0; ; attempt++) {
    const result = await sendOnce<T>(request, token, options.signal);
    if (!result.error || options.retry === false) return result;
    const delay = retryDelay(result.error, method, attempt, options.policy);
    if (delay === null) return result;
    await sleep(delay, options.signal);
    if (options.signal?.aborted) return result;
  }
}
