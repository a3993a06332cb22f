import { useEffect, useState } from "react";
import { formatDistanceToNow } from "date-fns";
import { call } from "../api/transport";
import type { SyncStatus as Status } from "../generated/bindings";

/** Whether this device syncs, when it last did, and what is waiting to go. */
export function SyncStatus(props: { refreshMs?: number }) {
  const [status, setStatus] = useState<Status | null>(null);
  const [error, setError] = useState(false);
  useEffect(() => {
    let live = true;
    const poll = () =>
      call("sync_status", {}).then(
        (s) => {
          if (!live) return;
          setStatus(s);
          setError(false);
        },
        () => live && setError(true),
      );
    void poll();
    const t = setInterval(poll, props.refreshMs ?? 5000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [props.refreshMs]);

  let text: string;
  if (error) text = "Flowkeep is not reachable";
  else if (!status) text = "…";
  else if (!status.configured) text = "Sync off (this device only)";
  else {
    const last = status.last_sync ? `synced ${formatDistanceToNow(status.last_sync, { addSuffix: true })}` : "not synced yet";
    const pending = status.pending_local_changes ? `, ${status.pending_local_changes} change${status.pending_local_changes === 1 ? "" : "s"} to send` : "";
    text = `Sync on: ${last}${pending}`;
  }
  return (
    <span className={`sync-status${error ? " error" : ""}`} role="status" aria-label="Sync status" title={status?.server ?? undefined}>
      {text}
    </span>
  );
}
