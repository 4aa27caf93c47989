// The top bar of the HTMX pages (same markup and classes), for the client's screens.
import { NavLink, Outlet } from "react-router";
import { useAuth } from "../hooks/useAuth";

export function Layout() {
  const { user, logout } = useAuth();
  return (
    <>
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="topbar">
        <div className="topbar-inner">
          <NavLink className="brand" to="/items">
            <svg className="brand-mark" viewBox="0 0 24 24" aria-hidden="true">
              <rect x="3" y="3" width="18" height="18" rx="5" />
              <path d="M8 8v8h8" />
            </svg>
            Ledgerly
          </NavLink>
          <input type="checkbox" id="nav-toggle" className="nav-toggle" aria-label="Toggle navigation" />
          <label htmlFor="nav-toggle" className="nav-toggle-label" aria-hidden="true">
            <span />
          </label>
          <nav className="nav" aria-label="Main">
            {user && (
              <>
                <NavLink to="/items">Items</NavLink>
                <NavLink to="/profile">Profile</NavLink>
                <span className="spacer" />
                <span className="nav-user">
                  <span className="nav-email">{user.email}</span>
                  <span className={`badge badge-${user.role}`}>{user.role}</span>
                </span>
                <button className="nav-button" type="button" onClick={() => void logout()}>
                  Sign out
                </button>
              </>
            )}
          </nav>
        </div>
      </header>
      <main id="main" className="container" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}
