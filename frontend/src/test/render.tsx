// Render with a fresh store (signed in as `user`, unless null) and a router at `route`.
import { render } from "@testing-library/react";
import { useLayoutEffect, type ReactNode } from "react";
import { Provider } from "react-redux";
import { MemoryRouter, useLocation } from "react-router";
import type { User } from "../api/types";
import { makeStore } from "../store/store";
import { owner } from "./fixtures";

const seen = { location: "" };

function LocationProbe() {
  const current = useLocation();
  // A layout effect runs within the commit that changed the route, so a test that has
  // just seen the new page also sees its location (a passive effect could still be pending).
  useLayoutEffect(() => {
    seen.location = `${current.pathname}${current.search}`;
  }, [current]);
  return null;
}

/** Where the router is now (path and query). */
export function location(): string {
  return seen.location;
}

export function renderApp(
  ui: ReactNode,
  options: { route?: string; user?: User | null; token?: string; restoring?: boolean } = {},
) {
  const user = options.user === undefined ? owner : options.user;
  const store = makeStore(
    options.restoring
      ? { auth: { status: "restoring", token: null, user: null, notice: null } }
      : user
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
