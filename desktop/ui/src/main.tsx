import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { askFirstPageEarly } from "./hooks/useWorkflowManager";
import "./styles.css";

// The first render waits (briefly) for the list's first page, so that it
// shows the rows: one render and one layout of the page instead of two.
const FIRST_PAGE_WAIT_MS = 150;
const firstPage = askFirstPageEarly();
void Promise.race([firstPage, new Promise((r) => setTimeout(r, FIRST_PAGE_WAIT_MS))]).then(() =>
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <App />
    </StrictMode>,
  ),
);
