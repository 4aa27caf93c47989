import type { ItemEntry, ItemPage, Token, User } from "../api/types";

export const owner: User = {
  id: 2,
  email: "user@example.com",
  name: "User",
  role: "user",
  is_active: true,
  created_at: "2026-01-01T00:00:00Z",
  last_login_at: null,
};

export const guest: User = { ...owner, id: 3, email: "guest@example.com", name: "Guest", role: "guest" };

export function token(accessToken: string, user: User = owner): Token {
  return { access_token: accessToken, token_type: "Bearer", expires_at: "2030-01-01T00:00:00Z", user };
}

export function item(id: number, ownerId = owner.id): ItemEntry {
  return {
    id,
    owner_id: ownerId,
    owner_name: ownerId === owner.id ? owner.name : `Person ${ownerId}`,
    name: `Item ${id}`,
    description: "",
    status: "active",
    price: "10.00",
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-02T00:00:00Z",
  };
}

export function page(items: ItemEntry[], extra: Partial<ItemPage> = {}): ItemPage {
  return { items, page: 1, per_page: 25, total: items.length, pages: 1, ...extra };
}

export function problem(status: number, detail: string, errors?: Record<string, string>) {
  return {
    type: "about:blank",
    title: "Error",
    status,
    detail,
    code: "error",
    instance: "/api/v1/x",
    ...(errors ? { errors } : {}),
  };
}
