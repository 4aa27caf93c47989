import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { Provider } from "react-redux";
import { BrowserRouter } from "react-router";
import { App } from "./App";
import { makeStore } from "./store/store";
import "./client.css";

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <Provider store={makeStore()}>
        <BrowserRouter basename="/app">
          <App />
        </BrowserRouter>
      </Provider>
    </StrictMode>,
  );
}
