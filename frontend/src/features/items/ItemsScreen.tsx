// Items through the API, in the generic DataTable: owners (and admins) create, edit and
// delete; guests and other users' rows are read-only, as on the HTMX items page.
import { useCallback, useState } from "react";
import { asApiError } from "../../api/errors";
import type { Item, ItemCreate, ItemEntry, ItemSort, User } from "../../api/types";
import { dateTime, money } from "../../format/format";
import { DataTable, type Column } from "../../components/DataTable";
import { useTableState, type TableDefaults } from "../../components/useTableState";
import { useCreateItemMutation, useDeleteItemMutation, useItems, useUpdateItemMutation } from "../../hooks/useApi";
import { ItemForm } from "./ItemForm";

const DEFAULTS: TableDefaults<ItemSort> = {
  sort: "created_at",
  dir: "desc",
  perPage: 25,
  sorts: ["id", "name", "price", "status", "created_at", "updated_at"],
};


export function mayChange(user: User, item: Item): boolean {
  return user.role === "admin" || (user.role === "user" && item.owner_id === user.id);
}

type Editing = { mode: "create" } | { mode: "edit"; item: Item } | { mode: "delete"; items: Item[] } | null;

export function ItemsScreen({ user }: { user: User }) {
  const [state, update] = useTableState(DEFAULTS);
  const { data, isLoading, isFetching, error, refetch } = useItems({
    sort: state.sort,
    dir: state.dir,
    page: state.page,
    per_page: state.perPage,
    q: state.q,
  });
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [editing, setEditing] = useState<Editing>(null);
  const [flash, setFlash] = useState<string | null>(null);
  const canWrite = user.role !== "guest";
  const onChange = useCallback(
    (...args: Parameters<typeof update>) => {
      setSelected(new Set());
      update(...args);
    },
    [update],
  );

  const columns: Column<ItemEntry, ItemSort>[] = [
    { key: "name", header: "Name", sort: "name", render: (item) => item.name },
    { key: "status", header: "Status", sort: "status", render: (item) => <span className={`badge badge-${item.status}`}>{item.status}</span> },
    { key: "price", header: "Price", sort: "price", numeric: true, render: (item) => money(item.price) },
    { key: "owner", header: "Owner", render: (item) => item.owner_name ?? "—" },
    { key: "updated", header: "Updated", sort: "updated_at", render: (item) => dateTime(item.updated_at) },
  ];
  const rows = data?.items;
  const chosen = (rows ?? []).filter((item) => selected.has(item.id));

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Items</h1>
          <p className="muted">{canWrite ? "Everyone's items; change your own." : "Everyone's items (read only)."}</p>
        </div>
        {canWrite && (
          <button type="button" className="btn" onClick={() => { setFlash(null); setEditing({ mode: "create" }); }}>
            New item
          </button>
        )}
      </div>
      {flash && <div className="flash flash-success" role="status">{flash}</div>}
      {editing?.mode === "create" && (
        <CreateItem onDone={(item) => { setEditing(null); if (item) setFlash(`Created “${item.name}”.`); }} />
      )}
      {editing?.mode === "edit" && (
        <EditItem key={editing.item.id} item={editing.item} onDone={(item) => { setEditing(null); if (item) setFlash(`Saved “${item.name}”.`); }} />
      )}
      {editing?.mode === "delete" && (
        <DeleteItems items={editing.items} onDone={(count) => { setEditing(null); setSelected(new Set()); if (count) setFlash(`Deleted ${count} item${count === 1 ? "" : "s"}.`); }} />
      )}
      {canWrite && chosen.length > 0 && (
        <div className="bulk-bar is-active card" role="region" aria-label="Selected rows">
          <span className="bulk-count">{chosen.length} selected</span>
          <button type="button" className="btn btn-sm btn-danger" onClick={() => { setEditing({ mode: "delete", items: chosen }); }}>
            Delete selected
          </button>
          <button type="button" className="btn btn-sm btn-secondary" onClick={() => { setSelected(new Set()); }}>Clear</button>
        </div>
      )}
      <DataTable<ItemEntry, ItemSort>
        label="Items"
        searchLabel="Search items by name"
        columns={columns}
        rows={rows}
        rowKey={(item) => item.id}
        total={data?.total ?? 0}
        pages={data?.pages ?? 0}
        state={state}
        onChange={onChange}
        loading={isLoading}
        fetching={isFetching}
        error={error}
        onRetry={() => void refetch()}
        empty={state.q ? <>No items match “{state.q}”.</> : "No items yet."}
        {...(canWrite
          ? {
              selectable: (item: Item) => mayChange(user, item),
              selected,
              onSelect: setSelected,
              rowActions: (item: Item) =>
                mayChange(user, item) ? (
                  <>
                    <button type="button" className="btn btn-sm btn-secondary" aria-label={`Edit ${item.name}`} onClick={() => { setFlash(null); setEditing({ mode: "edit", item }); }}>
                      Edit
                    </button>
                    <button type="button" className="btn btn-sm btn-danger" aria-label={`Delete ${item.name}`} onClick={() => { setFlash(null); setEditing({ mode: "delete", items: [item] }); }}>
                      Delete
                    </button>
                  </>
                ) : null,
            }
          : {})}
      />
    </>
  );
}

function CreateItem({ onDone }: { onDone: (item: Item | null) => void }) {
  const [create, { isLoading, error }] = useCreateItemMutation();
  const save = async (fields: ItemCreate) => {
    const result = await create(fields);
    if (result.data) onDone(result.data);
    return !result.error;
  };
  return <ItemForm busy={isLoading} error={asApiError(error)} onSave={save} onCancel={() => { onDone(null); }} />;
}

function EditItem({ item, onDone }: { item: Item; onDone: (item: Item | null) => void }) {
  const [updateItem, { isLoading, error }] = useUpdateItemMutation();
  const save = async (fields: ItemCreate) => {
    const result = await updateItem({ id: item.id, patch: fields });
    if (result.data) onDone(result.data);
    return !result.error;
  };
  return <ItemForm item={item} busy={isLoading} error={asApiError(error)} onSave={save} onCancel={() => { onDone(null); }} />;
}

function DeleteItems({ items, onDone }: { items: Item[]; onDone: (count: number) => void }) {
  const [remove, { isLoading, error }] = useDeleteItemMutation();
  const [failed, setFailed] = useState<string | null>(null);
  const confirm = async () => {
    let count = 0;
    for (const item of items) {
      const result = await remove(item.id);
      if (result.error) {
        setFailed(asApiError(result.error)?.detail ?? "Could not delete.");
        return;
      }
      count++;
    }
    onDone(count);
  };
  const what = items.length === 1 && items[0] ? `“${items[0].name}”` : `${items.length} items`;
  return (
    <section className="card narrow" role="alertdialog" aria-label="Confirm delete">
      <h2>Delete {what}?</h2>
      <p className="muted">This cannot be undone.</p>
      {(failed ?? error) && <div className="flash flash-error" role="alert">{failed ?? asApiError(error)?.detail}</div>}
      <div className="form-actions spaced">
        <button type="button" className="btn btn-danger" disabled={isLoading} onClick={() => void confirm()}>Delete</button>
        <button type="button" className="btn btn-secondary" onClick={() => { onDone(0); }}>Cancel</button>
      </div>
    </section>
  );
}
