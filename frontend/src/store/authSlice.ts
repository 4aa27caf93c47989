// Who is signed in. The access token lives here, in memory only: never localStorage or
// sessionStorage. After a reload the HttpOnly refresh cookie brings it back.
import { createSlice, type PayloadAction } from "@reduxjs/toolkit";
import type { Token, User } from "../api/types";

export type AuthStatus = "restoring" | "signedIn" | "signedOut";

export interface AuthState {
  status: AuthStatus;
  token: string | null;
  user: User | null;
  /** Why the last session ended, when it was not the user's choice. */
  notice: string | null;
}

const initialState: AuthState = { status: "restoring", token: null, user: null, notice: null };

export const authSlice = createSlice({
  name: "auth",
  initialState,
  reducers: {
    signedIn(state, action: PayloadAction<Token>) {
      state.status = "signedIn";
      state.token = action.payload.access_token;
      state.user = action.payload.user;
      state.notice = null;
    },
    userUpdated(state, action: PayloadAction<User>) {
      state.user = action.payload;
    },
    signedOut(state, action: PayloadAction<string | undefined>) {
      state.status = "signedOut";
      state.token = null;
      state.user = null;
      state.notice = action.payload ?? null;
    },
  },
});

export const { signedIn, userUpdated, signedOut } = authSlice.actions;
