// Every failed API call surfaces as one typed, serialisable ApiError (RFC 9457 problem JSON
// when the server sent one), so components read `error.fields.email` instead of guessing.
import type { Problem } from "./types";

export interface ApiError {
  /** HTTP status, or 0 when no answer arrived (network down, aborted). */
  status: number;
  title: string;
  detail: string;
  code: string;
  /** Field (or parameter) name -> message, from problem JSON's `errors`. */
  fields: Record<string, string>;
  /** Seconds the server asked us to wait (Retry-After), if it said. */
  retryAfter: number | null;
}

export function isApiError(value: unknown): value is ApiError {
  return (
    typeof value === "object" &&
    value !== null &&
    "status" in value &&
    "fields" in value &&
    "detail" in value
  );
}

function isProblem(body: unknown): body is Problem {
  return typeof body === "object" && body !== null && "status" in body && "title" in body;
}

/** Seconds from a Retry-After header: delta-seconds or an HTTP date. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | null {
  if (header === null || header.trim() === "") return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

export function problemError(status: number, body: unknown, retryAfter: number | null): ApiError {
  if (isProblem(body)) {
    return {
      status,
      title: body.title,
      detail: body.detail,
      code: body.code,
      fields: body.errors ?? {},
      retryAfter,
    };
  }
  return {
    status,
    title: `HTTP ${status}`,
    detail: "The server answered with an error.",
    code: "http_error",
    fields: {},
    retryAfter,
  };
}

export function networkError(detail = "The server could not be reached. Check your connection."): ApiError {
  return { status: 0, title: "Network error", detail, code: "network", fields: {}, retryAfter: null };
}

/** The ApiError inside whatever an RTK Query hook reports, if any. */
export function asApiError(error: unknown): ApiError | undefined {
  if (error === undefined || error === null) return undefined;
  if (isApiError(error)) return error;
  return networkError("Something went wrong.");
}
