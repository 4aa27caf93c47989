import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { http, HttpResponse } from "msw";
import { describe, expect, it } from "vitest";
import { App } from "../App";
import { item, page, problem, token } from "../test/fixtures";
import { location, renderApp } from "../test/render";
import { server } from "../test/server";

async function signIn(email: string, password: string) {
  const user = userEvent.setup();
  if (email) await user.type(screen.getByLabelText("Email"), email);
  if (password) await user.type(screen.getByLabelText("Password"), password);
  await user.click(screen.getByRole("button", { name: "Sign in" }));
}

describe("LoginForm", () => {
  it("says what is missing before sending anything", async () => {
    let sent = 0;
    server.use(http.post("/api/v1/auth/login", () => { sent++; return HttpResponse.json(token("t")); }));
    renderApp(<App />, { route: "/login", user: null });
    await signIn("", "");
    expect(screen.getByText("Enter your email.")).toBeInTheDocument();
    expect(screen.getByText("Enter your password.")).toBeInTheDocument();
    expect(screen.getByLabelText("Email")).toHaveAttribute("aria-invalid", "true");
    await signIn("not-an-email", "x");
    expect(screen.getByText(/Enter an email address/)).toBeInTheDocument();
    expect(sent).toBe(0);
  });

  it("shows the server's message for a wrong password", async () => {
    server.use(http.post("/api/v1/auth/login", () => HttpResponse.json(problem(401, "The email or password is incorrect."), { status: 401 })));
    renderApp(<App />, { route: "/login", user: null });
    await signIn("user@example.com", "wrong");
    expect(await screen.findByRole("alert")).toHaveTextContent("The email or password is incorrect.");
  });

  it("shows field messages from problem JSON", async () => {
    server.use(http.post("/api/v1/auth/login", () => HttpResponse.json(problem(422, "Invalid", { password: "Too long." }), { status: 422 })));
    renderApp(<App />, { route: "/login", user: null });
    await signIn("user@example.com", "x");
    expect(await screen.findByText("Too long.")).toBeInTheDocument();
  });

  it("shows throttling with its wait, and keeps the button off meanwhile", async () => {
    let sent = 0;
    server.use(
      http.post("/api/v1/auth/login", () => {
        sent++;
        return HttpResponse.json(problem(429, "Too many"), { status: 429, headers: { "Retry-After": "42" } });
      }),
    );
    renderApp(<App />, { route: "/login", user: null });
    await signIn("user@example.com", "pw");
    expect(await screen.findByRole("alert")).toHaveTextContent("Too many sign-in attempts. Try again in 42 s.");
    expect(screen.getByRole("button", { name: "Wait 42 s" })).toBeDisabled();
    expect(sent).toBe(1); // not retried behind the user's back
  });

  it("signs in, keeps the token in memory only, and goes where it was asked", async () => {
    server.use(
      http.post("/api/v1/auth/login", () => HttpResponse.json(token("secret-token"))),
      http.get("/api/v1/me", () => HttpResponse.json(token("x").user)),
    );
    const { store } = renderApp(<App />, { route: "/login?next=%2Fprofile", user: null });
    await signIn("user@example.com", "pw");
    expect(await screen.findByRole("heading", { name: "Your profile" })).toBeInTheDocument();
    expect(location()).toBe("/profile");
    expect(store.getState().auth.token).toBe("secret-token");
    const dump = (storage: Storage) =>
      Array.from({ length: storage.length }, (_, i) => storage.getItem(storage.key(i) ?? "")).join();
    // eslint-disable-next-line no-restricted-properties -- the test reads storage to prove it is empty of tokens
    const stored = dump(window.localStorage) + dump(window.sessionStorage) + document.cookie;
    expect(stored).not.toContain("secret-token");
  });

  it("restores the session from the refresh cookie after a reload, at the same URL", async () => {
    let refreshes = 0;
    server.use(
      http.post("/api/v1/auth/refresh", () => {
        refreshes++;
        return HttpResponse.json(token("restored"));
      }),
      http.get("/api/v1/items", () => HttpResponse.json(page([item(1)], { page: 2, pages: 3, total: 60 }))),
    );
    const { store } = renderApp(<App />, { route: "/items?page=2", restoring: true });
    expect(await screen.findByText("Item 1")).toBeInTheDocument();
    expect(location()).toBe("/items?page=2");
    expect(store.getState().auth.token).toBe("restored");
    expect(refreshes).toBe(1);
  });

  it("without a refresh cookie (204) asks to sign in and comes back after", async () => {
    server.use(
      http.post("/api/v1/auth/refresh", () => new HttpResponse(null, { status: 204 })),
      http.post("/api/v1/auth/login", () => HttpResponse.json(token("t"))),
      http.get("/api/v1/items", () => HttpResponse.json(page([item(1)]))),
    );
    renderApp(<App />, { route: "/items?sort=name", restoring: true });
    expect(await screen.findByRole("heading", { name: "Sign in" })).toBeInTheDocument();
    expect(location()).toBe("/login?next=%2Fitems%3Fsort%3Dname");
    expect(screen.queryByRole("status")).toBeNull(); // no "session ended" notice on a first visit
    await signIn("user@example.com", "pw");
    expect(await screen.findByText("Item 1")).toBeInTheDocument();
    expect(location()).toBe("/items?sort=name");
  });
});
