// Sign in: checks the form before sending, shows the server's message (wrong password,
// field errors) and, when sign-ins are throttled (429), how long to wait.
import { useEffect, useState, type SyntheticEvent } from "react";
import type { ApiError } from "../api/errors";
import { Field } from "./Field";

export interface LoginFormProps {
  onLogin: (email: string, password: string) => Promise<ApiError | null>;
  notice?: string | null;
}

type Errors = Partial<Record<"email" | "password", string>>;

export function validateLogin(email: string, password: string): Errors {
  const errors: Errors = {};
  if (!email.trim()) errors.email = "Enter your email.";
  else if (!/^[^@\s]+@[^@\s]+$/.test(email.trim())) errors.email = "Enter an email address like name@example.com.";
  if (!password) errors.password = "Enter your password.";
  return errors;
}

export function LoginForm({ onLogin, notice }: LoginFormProps) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Errors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [wait, setWait] = useState(0);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (wait <= 0) return;
    const timer = setTimeout(() => { setWait((s) => s - 1); }, 1000);
    return () => { clearTimeout(timer); };
  }, [wait]);

  async function submit(event: SyntheticEvent<HTMLFormElement>) {
    event.preventDefault();
    const found = validateLogin(email, password);
    setErrors(found);
    setMessage(null);
    if (Object.keys(found).length > 0 || wait > 0) return;
    setBusy(true);
    const error = await onLogin(email.trim(), password);
    setBusy(false);
    if (!error) return;
    setErrors(error.fields);
    if (error.status === 429) {
      setWait(error.retryAfter ?? 30);
      setMessage("Too many sign-in attempts.");
    } else {
      setMessage(error.detail);
    }
  }

  return (
    <div className="auth-wrap">
      <div className="card auth-card">
        <h1>Sign in</h1>
        <p className="muted">Welcome back to Ledgerly.</p>
        {notice && !message && (
          <div className="flash flash-info" role="status">
            {notice}
          </div>
        )}
        {message && (
          <div className="flash flash-error" role="alert">
            {message}
            {wait > 0 && ` Try again in ${wait} s.`}
          </div>
        )}
        <form className="form" noValidate onSubmit={(e) => void submit(e)}>
          <Field label="Email" type="email" name="email" autoComplete="username" value={email} error={errors.email} onChange={(e) => { setEmail(e.target.value); }} />
          <Field label="Password" type="password" name="password" autoComplete="current-password" value={password} error={errors.password} onChange={(e) => { setPassword(e.target.value); }} />
          <button className="btn btn-block" type="submit" disabled={busy || wait > 0}>
            {wait > 0 ? `Wait ${wait} s` : busy ? "Signing in…" : "Sign in"}
          </button>
        </form>
      </div>
    </div>
  );
}
