// Sign in, sign out, who is signed in and what they may do. The access token stays in the
// Redux store (memory); a reload restores it from the HttpOnly refresh cookie.
import { useCallback, useEffect } from "react";
import type { ThunkAction, UnknownAction } from "@reduxjs/toolkit";
import { api, type StoreExtra } from "../api/api";
import { asApiError, type ApiError } from "../api/errors";
import type { Role } from "../api/types";
import { signedOut } from "../store/authSlice";
import { useAppDispatch, useAppSelector, type RootState } from "../store/store";

const restoreSession =
  (): ThunkAction<Promise<string | null>, RootState, StoreExtra, UnknownAction> =>
  (dispatch, _getState, extra) =>
    extra.session.refresh(dispatch, { quiet: true });

export function useAuth() {
  const { status, user, notice } = useAppSelector((state) => state.auth);
  const dispatch = useAppDispatch();
  const [loginMutation] = api.useLoginMutation();
  const [logoutMutation] = api.useLogoutMutation();

  const login = useCallback(
    async (email: string, password: string): Promise<ApiError | null> => {
      const result = await loginMutation({ email, password });
      return result.error ? (asApiError(result.error) ?? null) : null;
    },
    [loginMutation],
  );

  const logout = useCallback(async () => {
    await logoutMutation(undefined); // revokes the token and the refresh cookie's sign-in
    dispatch(signedOut());
    dispatch(api.util.resetApiState()); // nothing of this user stays cached
  }, [dispatch, logoutMutation]);

  const restore = useCallback(() => dispatch(restoreSession()), [dispatch]);

  const role: Role | null = user?.role ?? null;
  return {
    status,
    user,
    role,
    notice,
    isSignedIn: status === "signedIn",
    canWrite: role === "admin" || role === "user",
    isAdmin: role === "admin",
    login,
    logout,
    restore,
  };
}

/** On start: try the refresh cookie once (a no-op when already signed in). */
export function useRestoreSession(): void {
  const { status, restore } = useAuth();
  useEffect(() => {
    if (status === "restoring") void restore();
  }, [status, restore]);
}
