// The signed-in user's profile: details, name and email (a new email needs the current
// password), and the password. Field errors come from the server's problem JSON.
import { useState, type SyntheticEvent } from "react";
import { asApiError, type ApiError } from "../api/errors";
import type { User } from "../api/types";
import { dateTime, longDate } from "../format/format";
import { useChangePasswordMutation, useUpdateMeMutation } from "../hooks/useApi";
import { Field } from "./Field";

/** Messages by field; 403 and 409 on an email change belong beside a field too. */
export function profileErrors(error: ApiError | undefined): Record<string, string> {
  if (!error) return {};
  if (error.status === 403) return { current_password: error.detail };
  if (error.status === 409) return { email: error.detail };
  return error.fields;
}

export function UserProfile({ user, canWrite }: { user: User; canWrite: boolean }) {
  return (
    <>
      <div className="page-head">
        <div>
          <h1>Your profile</h1>
          <p className="muted">How others see you, and how you sign in.</p>
        </div>
      </div>
      <div className="grid-2">
        <ProfileCard user={user} canWrite={canWrite} />
        {canWrite && <PasswordCard />}
      </div>
    </>
  );
}

function ProfileCard({ user, canWrite }: { user: User; canWrite: boolean }) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(user.name);
  const [email, setEmail] = useState(user.email);
  const [password, setPassword] = useState("");
  const [saved, setSaved] = useState(false);
  const [update, { isLoading, error, reset }] = useUpdateMeMutation();
  const errors = profileErrors(asApiError(error));
  const emailChanged = email.trim().toLowerCase() !== user.email.toLowerCase();

  async function submit(event: SyntheticEvent<HTMLFormElement>) {
    event.preventDefault();
    const patch = emailChanged
      ? { name: name.trim(), email: email.trim(), current_password: password }
      : { name: name.trim() };
    const result = await update(patch);
    if (!result.error) {
      setEditing(false);
      setPassword("");
      setSaved(true);
    }
  }

  if (!editing) {
    return (
      <section className="card" aria-labelledby="profile-title">
        <div className="card-head">
          <h2 id="profile-title">Details</h2>
          {canWrite && (
            <button type="button" className="btn btn-sm btn-secondary" onClick={() => { reset(); setSaved(false); setName(user.name); setEmail(user.email); setEditing(true); }}>
              Edit
            </button>
          )}
        </div>
        {saved && <div className="flash flash-success" role="status">Profile saved.</div>}
        <dl className="details">
          <dt>Name</dt>
          <dd>{user.name}</dd>
          <dt>Email</dt>
          <dd>{user.email}</dd>
          <dt>Role</dt>
          <dd><span className={`badge badge-${user.role}`}>{user.role}</span></dd>
          <dt>Member since</dt>
          <dd>{longDate(user.created_at)}</dd>
          <dt>Last sign-in</dt>
          <dd>{dateTime(user.last_login_at)}</dd>
        </dl>
      </section>
    );
  }
  return (
    <section className="card" aria-labelledby="profile-title">
      <h2 id="profile-title">Edit details</h2>
      <form className="form" noValidate onSubmit={(e) => void submit(e)}>
        <Field label="Name" name="name" value={name} maxLength={200} error={errors.name} onChange={(e) => { setName(e.target.value); }} />
        <Field label="Email" type="email" name="email" value={email} error={errors.email} onChange={(e) => { setEmail(e.target.value); }} />
        {emailChanged && (
          <Field
            label="Current password"
            type="password"
            name="current_password"
            autoComplete="current-password"
            value={password}
            error={errors.current_password}
            hint="Needed to change your email: password resets are sent there."
            onChange={(e) => { setPassword(e.target.value); }}
          />
        )}
        {error && Object.keys(errors).length === 0 && (
          <div className="flash flash-error" role="alert">{asApiError(error)?.detail}</div>
        )}
        <div className="form-actions">
          <button className="btn" type="submit" disabled={isLoading}>{isLoading ? "Saving…" : "Save"}</button>
          <button className="btn btn-secondary" type="button" onClick={() => { setEditing(false); }}>Cancel</button>
        </div>
      </form>
    </section>
  );
}

function PasswordCard() {
  const empty = { current_password: "", new_password: "", confirm_password: "" };
  const [form, setForm] = useState(empty);
  const [saved, setSaved] = useState(false);
  const [change, { isLoading, error }] = useChangePasswordMutation();
  const errors = asApiError(error)?.fields ?? {};
  const set = (name: keyof typeof empty) => (e: { target: { value: string } }) => { setForm({ ...form, [name]: e.target.value }); };

  async function submit(event: SyntheticEvent<HTMLFormElement>) {
    event.preventDefault();
    setSaved(false);
    const result = await change(form);
    if (!result.error) {
      setForm(empty);
      setSaved(true);
    }
  }

  return (
    <section className="card" aria-labelledby="password-title">
      <h2 id="password-title">Change password</h2>
      <p className="muted">Every other session and device is signed out.</p>
      {saved && <div className="flash flash-success" role="status">Password changed.</div>}
      <form className="form spaced" noValidate onSubmit={(e) => void submit(e)}>
        <Field label="Current password" type="password" name="password_current" autoComplete="current-password" value={form.current_password} error={errors.current_password} onChange={set("current_password")} />
        <Field label="New password" type="password" name="new_password" autoComplete="new-password" value={form.new_password} error={errors.new_password} onChange={set("new_password")} />
        <Field label="Repeat new password" type="password" name="confirm_password" autoComplete="new-password" value={form.confirm_password} error={errors.confirm_password} onChange={set("confirm_password")} />
        <div className="form-actions">
          <button className="btn" type="submit" disabled={isLoading}>{isLoading ? "Saving…" : "Change password"}</button>
        </div>
      </form>
    </section>
  );
}
