// Refreshing the access token with the HttpOnly cookie: one refresh at a time per store,
// however many requests met a 401 (or React effects asked) at once.
import type { Dispatch } from "@reduxjs/toolkit";
import { signedIn, signedOut } from "../store/authSlice";
import { send } from "./http";
import type { Token } from "./types";

export const SESSION_ENDED = "Your session has ended. Please sign in again.";

export interface SessionGate {
  /** A new access token (dispatched to the store), or null after signing out. */
  refresh(dispatch: Dispatch, options?: { quiet?: boolean }): Promise<string | null>;
}

export function createSessionGate(): SessionGate {
  let inFlight: Promise<string | null> | null = null;
  return {
    refresh(dispatch, options = {}) {
      inFlight ??= (async () => {
        // 200: a new token; 204: no refresh cookie (nobody signed in); 401: it ended.
        const result = await send<Token | null>({ url: "/auth/refresh", method: "POST" }, null);
        if (result.error) {
          const quietly = options.quiet === true && result.error.status === 401;
          dispatch(signedOut(quietly ? undefined : result.error.status === 401 ? SESSION_ENDED : result.error.detail));
          return null;
        }
        if (result.data === null) {
          dispatch(signedOut(options.quiet ? undefined : SESSION_ENDED));
          return null;
        }
        dispatch(signedIn(result.data));
        return result.data.access_token;
      })().finally(() => {
        inFlight = null;
      });
      return inFlight;
    },
  };
}
