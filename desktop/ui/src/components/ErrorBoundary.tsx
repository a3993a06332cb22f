import { Component, type ErrorInfo, type ReactNode } from "react";
import { lastDraft } from "../config/drafts";

/**
 * A render error shows here instead of blanking the whole app, with the
 * unsaved configuration draft (kept outside React) to copy, and a way back.
 */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: string | null }, { error: Error | null; copied: boolean }> {
  state = { error: null as Error | null, copied: false };

  static getDerivedStateFromError(error: Error) {
    return { error, copied: false };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error("flowkeep: a view failed to render", error, info.componentStack);
  }

  componentDidUpdate(prev: { resetKey?: string | null }) {
    // Another workflow chosen: try again.
    if (this.state.error && prev.resetKey !== this.props.resetKey) this.setState({ error: null, copied: false });
  }

  render() {
    if (!this.state.error) return this.props.children;
    const draft = lastDraft();
    const text = draft ? JSON.stringify(draft.draft, null, 2) : null;
    return (
      <div role="alert" className="crash">
        <h2>This view stopped working</h2>
        <p className="error">{this.state.error.message}</p>
        {text ? (
          <>
            <p>Your unsaved configuration is below; copy it before you go on.</p>
            <textarea className="code" readOnly rows={8} value={text} aria-label="Unsaved configuration" />
            <button
              type="button"
              onClick={() => {
                void navigator.clipboard?.writeText(text).then(() => this.setState({ copied: true }));
              }}
            >
              {this.state.copied ? "Copied" : "Copy unsaved configuration"}
            </button>
          </>
        ) : (
          <p>No unsaved edits were lost.</p>
        )}
        <button type="button" onClick={() => this.setState({ error: null, copied: false })}>
          Try again
        </button>
      </div>
    );
  }
}
