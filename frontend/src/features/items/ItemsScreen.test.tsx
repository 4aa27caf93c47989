// The items screen on DataTable: sorting, paging, page size, debounced search and URL state
// (against msw), and write controls only where the user may write.
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { http, HttpResponse } from "msw";
import { describe, expect, it } from "vitest";
import { guest, item, owner, page, problem } from "../../test/fixtures";
import { location, renderApp } from "../../test/render";
import { server } from "../../test/server";
import { ItemsScreen } from "./ItemsScreen";

function serveItems() {
  const queries: URLSearchParams[] = [];
  server.use(
    http.get("/api/v1/items", ({ request }) => {
      const query = new URL(request.url).searchParams;
      queries.push(query);
      const n = Number(query.get("page") ?? 1);
      return HttpResponse.json(
        page([item(n * 10 + 1), item(n * 10 + 2, 99)], { page: n, pages: 5, total: 120, per_page: 25 }),
      );
    }),
  );
  return queries;
}

const last = (queries: URLSearchParams[]) => Object.fromEntries(queries.at(-1) ?? []);

describe("ItemsScreen", () => {
  it("sorts by a header click, shows it with aria-sort and keeps it in the URL", async () => {
    const queries = serveItems();
    const user = userEvent.setup();
    renderApp(<ItemsScreen user={owner} />, { route: "/items" });
    await screen.findByText("Item 11");
    const nameHeader = screen.getByRole("columnheader", { name: /Name/ });
    expect(nameHeader).toHaveAttribute("aria-sort", "none");
    expect(screen.getByRole("columnheader", { name: /Updated/ })).toHaveAttribute("aria-sort", "none");
    await user.click(within(nameHeader).getByRole("button"));
    await waitFor(() => { expect(last(queries)).toMatchObject({ sort: "name", dir: "asc" }); });
    expect(screen.getByRole("columnheader", { name: /Name/ })).toHaveAttribute("aria-sort", "ascending");
    expect(location()).toBe("/items?sort=name&dir=asc");
    await user.click(within(screen.getByRole("columnheader", { name: /Name/ })).getByRole("button"));
    await waitFor(() => { expect(last(queries)).toMatchObject({ sort: "name", dir: "desc" }); });
    expect(screen.getByRole("columnheader", { name: /Name/ })).toHaveAttribute("aria-sort", "descending");
  });

  it("pages and changes the page size through the URL", async () => {
    const queries = serveItems();
    const user = userEvent.setup();
    renderApp(<ItemsScreen user={owner} />, { route: "/items" });
    await screen.findByText("Item 11");
    expect(screen.getByText("1–25 of 120")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Next ›" }));
    await screen.findByText("Item 21");
    expect(last(queries)).toMatchObject({ page: "2" });
    expect(location()).toBe("/items?page=2");
    expect(screen.getByRole("button", { name: "Page 2" })).toHaveAttribute("aria-current", "page");
    await user.click(screen.getByRole("button", { name: "Last »" }));
    await waitFor(() => { expect(location()).toBe("/items?page=5"); });
    await user.selectOptions(screen.getByLabelText("Rows per page"), "50");
    await waitFor(() => { expect(location()).toBe("/items?per_page=50"); }); // back to page 1
    expect(last(queries)).toMatchObject({ per_page: "50", page: "1" });
  });

  it("opens in the state a shared link describes, ignoring nonsense", async () => {
    const queries = serveItems();
    renderApp(<ItemsScreen user={owner} />, { route: "/items?sort=price&dir=asc&page=3&q=kettle&per_page=7" });
    await screen.findByText("Item 31");
    expect(last(queries)).toMatchObject({ sort: "price", dir: "asc", page: "3", q: "kettle", per_page: "25" });
    expect(screen.getByRole("columnheader", { name: /Price/ })).toHaveAttribute("aria-sort", "ascending");
    expect(screen.getByRole("searchbox")).toHaveValue("kettle");
  });

  it("searches once typing pauses, not on every key", async () => {
    const queries = serveItems();
    const user = userEvent.setup();
    renderApp(<ItemsScreen user={owner} />, { route: "/items?page=4" });
    await screen.findByText("Item 41");
    await user.type(screen.getByRole("searchbox"), "falcon");
    await waitFor(() => { expect(location()).toBe("/items?q=falcon"); });
    await waitFor(() => { expect(queries.filter((q) => q.get("q")).length).toBeGreaterThan(0); });
    await new Promise((r) => setTimeout(r, 400));
    // one search for the whole word, from page 1: no "f", "fa", "fal", ...
    expect(queries.filter((q) => q.get("q")).map((q) => [q.get("q"), q.get("page")])).toEqual([["falcon", "1"]]);
  });

  it("shows loading, empty and error states", async () => {
    server.use(http.get("/api/v1/items", () => HttpResponse.json(page([]))));
    renderApp(<ItemsScreen user={owner} />, { route: "/items?q=zzz" });
    expect(screen.getByText("Loading…")).toBeInTheDocument();
    expect(await screen.findByText("No items match “zzz”.")).toBeInTheDocument();
    server.use(http.get("/api/v1/items", () => HttpResponse.json(problem(400, "Bad sort"), { status: 400 })));
    renderApp(<ItemsScreen user={owner} />, { route: "/items?sort=name" });
    expect(await screen.findByText(/Bad sort/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });

  it("gives owners write controls on their own rows only, and guests none", async () => {
    serveItems();
    const view = renderApp(<ItemsScreen user={owner} />, { route: "/items" });
    await screen.findByText("Item 11");
    expect(screen.getByRole("button", { name: "New item" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Edit Item 11" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Edit Item 12" })).toBeNull(); // someone else's
    expect(screen.getByRole("checkbox", { name: "Select row 11" })).toBeInTheDocument();
    expect(screen.queryByRole("checkbox", { name: "Select row 12" })).toBeNull();
    view.unmount();
    renderApp(<ItemsScreen user={guest} />, { route: "/items" });
    await screen.findByText("Item 11");
    expect(screen.queryByRole("button", { name: /New item|Edit|Delete/ })).toBeNull();
    expect(screen.queryByRole("checkbox")).toBeNull();
  });

  it("names each row's owner, as the items page does", async () => {
    serveItems();
    renderApp(<ItemsScreen user={owner} />, { route: "/items" });
    const mine = (await screen.findByText("Item 11")).closest("tr");
    const theirs = screen.getByText("Item 12").closest("tr");
    expect(within(mine as HTMLElement).getByText("User")).toHaveAttribute("data-label", "Owner");
    expect(within(theirs as HTMLElement).getByText("Person 99")).toHaveAttribute("data-label", "Owner");
    expect(screen.queryByText("#99")).toBeNull();
  });

  it("shows the server's field errors when saving, and the new row after", async () => {
    serveItems();
    let attempts = 0;
    server.use(
      http.post("/api/v1/items", () => {
        attempts++;
        return attempts === 1
          ? HttpResponse.json(problem(422, "Invalid", { price: "Enter a price like 12.50." }), { status: 422 })
          : HttpResponse.json(item(7), { status: 201 });
      }),
    );
    const user = userEvent.setup();
    renderApp(<ItemsScreen user={owner} />, { route: "/items" });
    await screen.findByText("Item 11");
    await user.click(screen.getByRole("button", { name: "New item" }));
    await user.type(screen.getByLabelText("Name"), "Lamp");
    await user.type(screen.getByLabelText("Price"), "cheap");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Enter a price like 12.50.")).toBeInTheDocument();
    expect(screen.getByLabelText("Price")).toHaveAttribute("aria-invalid", "true");
    await user.clear(screen.getByLabelText("Price"));
    await user.type(screen.getByLabelText("Price"), "12.50");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Created “Item 7”.")).toBeInTheDocument();
  });
});
