// Routes of the client under /app/ (Flask answers every one of them with index.html).
import type { ReactNode } from "react";
import { Navigate, Route, Routes, useLocation, useSearchParams } from "react-router";
import { LoginForm } from "./components/LoginForm";
import { Layout } from "./components/Layout";
import { UserProfile } from "./components/UserProfile";
import { ItemsScreen } from "./features/items/ItemsScreen";
import { useAuth, useRestoreSession } from "./hooks/useAuth";

function Loading() {
  return (
    <p className="empty" role="status">
      Loading…
    </p>
  );
}

/** Signed-in screens: wait for the refresh cookie's answer, else go to sign-in and back. */
function RequireUser({ children }: { children: (user: NonNullable<ReturnType<typeof useAuth>["user"]>) => ReactNode }) {
  const { status, user } = useAuth();
  const location = useLocation();
  if (status === "restoring") return <Loading />;
  if (!user) {
    const next = `${location.pathname}${location.search}`;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  return <>{children(user)}</>;
}

/** Only same-app paths: never another origin. */
function safeNext(raw: string | null): string {
  return raw && raw.startsWith("/") && !raw.startsWith("//") && !raw.includes("\\") ? raw : "/items";
}

function LoginPage() {
  const { status, login, notice } = useAuth();
  const [params] = useSearchParams();
  if (status === "restoring") return <Loading />;
  if (status === "signedIn") return <Navigate to={safeNext(params.get("next"))} replace />;
  return <LoginForm onLogin={login} notice={notice} />;
}

function NotFound() {
  return (
    <div className="card error-page">
      <p className="error-code">404</p>
      <h1>Not found</h1>
      <p className="muted">There is nothing at this address.</p>
    </div>
  );
}

export function App() {
  useRestoreSession();
  const { canWrite } = useAuth();
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<Navigate to="/items" replace />} />
        <Route path="login" element={<LoginPage />} />
        <Route path="items" element={<RequireUser>{(user) => <ItemsScreen user={user} />}</RequireUser>} />
        <Route path="profile" element={<RequireUser>{(user) => <UserProfile user={user} canWrite={canWrite} />}</RequireUser>} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}
