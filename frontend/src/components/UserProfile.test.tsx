import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { http, HttpResponse } from "msw";
import { describe, expect, it } from "vitest";
import { guest, owner, problem, token } from "../test/fixtures";
import { renderApp } from "../test/render";
import { server } from "../test/server";
import { UserProfile } from "./UserProfile";

describe("UserProfile", () => {
  it("shows a field error from problem JSON, then saves", async () => {
    const bodies: unknown[] = [];
    server.use(
      http.patch("/api/v1/me", async ({ request }) => {
        bodies.push(await request.json());
        return bodies.length === 1
          ? HttpResponse.json(problem(422, "Invalid", { name: "Enter your name." }), { status: 422 })
          : HttpResponse.json({ ...owner, name: "New Name" });
      }),
    );
    const user = userEvent.setup();
    const { store } = renderApp(<UserProfile user={owner} canWrite />);
    await user.click(screen.getByRole("button", { name: "Edit" }));
    await user.clear(screen.getByLabelText("Name"));
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Enter your name.")).toBeInTheDocument();
    await user.type(screen.getByLabelText("Name"), "New Name");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Profile saved.")).toBeInTheDocument();
    expect(bodies).toEqual([{ name: "" }, { name: "New Name" }]);
    expect(store.getState().auth.user?.name).toBe("New Name");
  });

  it("asks for the current password to change the email and shows a wrong one beside it", async () => {
    const bodies: unknown[] = [];
    server.use(
      http.patch("/api/v1/me", async ({ request }) => {
        bodies.push(await request.json());
        return HttpResponse.json(problem(403, "The current password is not correct."), { status: 403 });
      }),
    );
    const user = userEvent.setup();
    renderApp(<UserProfile user={owner} canWrite />);
    await user.click(screen.getByRole("button", { name: "Edit" }));
    expect(screen.queryByLabelText("Current password", { selector: "input[name=current_password]" })).toBeNull();
    await user.clear(screen.getByLabelText("Email"));
    await user.type(screen.getByLabelText("Email"), "new@example.com");
    const password = screen.getByLabelText("Current password", { selector: "input[name=current_password]" });
    await user.type(password, "nope");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("The current password is not correct.")).toBeInTheDocument();
    expect(password).toHaveAttribute("aria-invalid", "true");
    expect(bodies).toEqual([{ name: "User", email: "new@example.com", current_password: "nope" }]);
  });

  it("changes the password and keeps the new token it is given", async () => {
    server.use(http.post("/api/v1/me/password", () => HttpResponse.json(token("after-change"))));
    const user = userEvent.setup();
    const { store } = renderApp(<UserProfile user={owner} canWrite />);
    const card = screen.getByRole("region", { name: "Change password" });
    const inputs = card.querySelectorAll("input");
    await user.type(inputs[0] as HTMLInputElement, "old");
    await user.type(inputs[1] as HTMLInputElement, "a long new password");
    await user.type(inputs[2] as HTMLInputElement, "a long new password");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    expect(await screen.findByText("Password changed.")).toBeInTheDocument();
    expect(store.getState().auth.token).toBe("after-change");
  });

  it("is read-only for guests", () => {
    renderApp(<UserProfile user={guest} canWrite={false} />, { user: guest });
    expect(screen.getByText("guest@example.com")).toBeInTheDocument();
    expect(screen.queryByRole("button")).toBeNull();
  });
});
