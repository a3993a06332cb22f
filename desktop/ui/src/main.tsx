import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { askFirstPageEarly } from "./hooks/useWorkflowManager";
import "./styles.css";

askFirstPageEarly();
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
