// Create or edit an item; the server's field messages appear beside the fields.
import { useState, type SyntheticEvent } from "react";
import type { ApiError } from "../../api/errors";
import type { Item, ItemCreate, ItemStatus } from "../../api/types";
import { Field } from "../../components/Field";

export const STATUSES: readonly ItemStatus[] = ["draft", "active", "archived"];

export function ItemForm(props: {
  item?: Item;
  busy: boolean;
  error: ApiError | undefined;
  onSave: (fields: ItemCreate) => Promise<boolean>;
  onCancel: () => void;
}) {
  const { item } = props;
  const [name, setName] = useState(item?.name ?? "");
  const [price, setPrice] = useState(item?.price ?? "");
  const [status, setStatus] = useState<ItemStatus>(item?.status ?? "draft");
  const [description, setDescription] = useState(item?.description ?? "");
  const errors = props.error?.fields ?? {};
  const title = item ? `Edit “${item.name}”` : "New item";

  async function submit(event: SyntheticEvent<HTMLFormElement>) {
    event.preventDefault();
    await props.onSave({ name: name.trim(), price: price.trim(), status, description });
  }

  return (
    <section className="card narrow" aria-label={title}>
      <h2>{title}</h2>
      <form className="form spaced" noValidate onSubmit={(e) => void submit(e)}>
        <div className="grid-fields">
          <Field label="Name" name="name" value={name} maxLength={200} error={errors.name} onChange={(e) => { setName(e.target.value); }} />
          <Field label="Price" name="price" inputMode="decimal" value={price} error={errors.price} onChange={(e) => { setPrice(e.target.value); }} />
          <div className={`field${errors.status ? " has-error" : ""}`}>
            <label htmlFor="item-status">Status</label>
            <select id="item-status" value={status} onChange={(e) => { setStatus(e.target.value as ItemStatus); }}>
              {STATUSES.map((s) => (
                <option key={s} value={s}>{s}</option>
              ))}
            </select>
            {errors.status && <p className="field-error">{errors.status}</p>}
          </div>
        </div>
        <div className={`field${errors.description ? " has-error" : ""}`}>
          <label htmlFor="item-description">Description</label>
          <textarea id="item-description" rows={3} maxLength={5000} value={description} onChange={(e) => { setDescription(e.target.value); }} />
          {errors.description && <p className="field-error">{errors.description}</p>}
        </div>
        {props.error && Object.keys(errors).length === 0 && (
          <div className="flash flash-error" role="alert">{props.error.detail}</div>
        )}
        <div className="form-actions">
          <button className="btn" type="submit" disabled={props.busy}>{props.busy ? "Saving…" : "Save"}</button>
          <button className="btn btn-secondary" type="button" onClick={props.onCancel}>Cancel</button>
        </div>
      </form>
    </section>
  );
}
