/** What could not be loaded, why, and a way to try again. */
export function LoadError(props: { what: string; error: string; onRetry: () => void }) {
  return (
    <div role="alert" className="error">
      Could not load {props.what}: {props.error}{" "}
      <button type="button" onClick={props.onRetry}>
        Retry
      </button>
    </div>
  );
}
