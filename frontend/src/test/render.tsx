// Render with a fresh store (signed in as `user`, unless null) and a router at `route`.
import { render } from "@testing-library/react";
import type { ReactNode } from "react";
import { Provider } from "react-redux";
import { MemoryRouter, useLocation } from "react-router";
import type { User } from "../api/types";
import { makeStore } from "../store/store";
import { owner } from "./fixtures";

let currentLocation = "";

function LocationProbe() {
  const location = useLocation();
  currentLocation = `${location.pathname}${location.search}`;
  return null;
}

export function location(): string {
  return currentLocation;
}

export function renderApp(ui: ReactNode, options: { route?: string; user?: User | null; token?: string } = {}) {
  const user = options.user === undefined ? owner : options.user;
  const store = makeStore(
    user
      ? { auth: { status: "signedIn", token: options.token ?? "token-1", user, notice: null } }
      : { auth: { status: "signedOut", token: null, user: null, notice: null } },
  );
  const view = render(
    <Provider store={store}>
      <MemoryRouter initialEntries={[options.route ?? "/"]}>
        <LocationProbe />
        {ui}
      </MemoryRouter>
    </Provider>,
  );
  return { store, ...view };
}
