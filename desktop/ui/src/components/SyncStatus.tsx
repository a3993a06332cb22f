import { useEffect, useState } from "react";
import { formatDistanceToNow } from "date-fns";
import { call } from "../api/transport";
import { subscribe, subscribeSync } from "../api/live";
import type { SyncRejection, SyncStatus as Status } from "../generated/bindings";

/**
 * Whether this device syncs, when it last did, what is waiting to go, and
 * what other devices sent that failed the checks and was not merged. Read
 * once, then kept current by what the app pushes (`subscribeSync`); read
 * again after a reconnect.
 */
export function SyncStatus() {
  const [status, setStatus] = useState<Status | null>(null);
  const [error, setError] = useState(false);
  useEffect(() => {
    let live = true;
    const read = () =>
      call("sync_status", {}).then(
        (s) => {
          if (!live) return;
          setStatus(s);
          setError(false);
        },
        () => live && setError(true),
      );
    void read();
    const stopSync = subscribeSync((s) => {
      setStatus(s);
      setError(false);
    });
    const stopChanges = subscribe((e) => {
      if (e === "reload") void read();
    });
    return () => {
      live = false;
      stopSync?.();
      stopChanges?.();
    };
  }, []);
  // "synced 2 minutes ago" ages without news: shown again every 15 s (no
  // request, only the text).
  const [, setNow] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(t);
  }, []);

  let text: string;
  const failed = status?.last_error ?? null;
  if (error) text = "Flowkeep is not reachable";
  else if (!status) text = "…";
  else if (!status.configured) text = "Sync off (this device only)";
  else {
    const changes = status.pending_local_changes ? `, ${status.pending_local_changes} change${status.pending_local_changes === 1 ? "" : "s"} to send` : "";
    // Documents the server had not taken when the last sync ended (a limit,
    // a dropped connection): they are still here, and go with the next.
    const unconfirmed = status.unconfirmed ? `, ${status.unconfirmed} document${status.unconfirmed === 1 ? "" : "s"} not on the server yet` : "";
    const pending = changes + unconfirmed;
    if (failed) text = `Sync failed ${formatDistanceToNow(failed.at, { addSuffix: true })}: ${failed.message}${pending}`;
    else {
      const last = status.last_sync ? `synced ${formatDistanceToNow(status.last_sync, { addSuffix: true })}` : "not synced yet";
      text = `Sync on: ${last}${pending}`;
    }
  }
  // The workspace is at a server limit: syncing goes on, but something
  // stays on this device; said beside the status, in the warning style.
  const limit = status?.configured ? status.server_limit : null;
  // The token itself never reaches the UI; its fingerprint tells tokens apart.
  const title = status?.server ? `${status.server}${status.token_fingerprint ? ` · credential ${status.token_fingerprint}` : ""}` : undefined;
  return (
    <span className="sync">
      <span className={`sync-status${error || failed ? " error" : ""}`} role="status" aria-label="Sync status" title={title}>
        {text}
      </span>
      {limit && (
        <span className="sync-limit" role="note" aria-label="Sync server limit">
          The sync server says: {limit}
        </span>
      )}
      {status && status.rejected > 0 && <Rejections status={status} />}
    </span>
  );
}

function Rejections({ status }: { status: Status }) {
  const older = status.rejected - status.rejections.length;
  return (
    <details className="sync-rejections">
      <summary>{status.rejected} rejected</summary>
      <div role="region" aria-label="Rejected sync data">
        <p>Data from other devices that failed the checks and was not merged (latest first):</p>
        <ul>
          {status.rejections.map((r, i) => (
            <li key={`${r.at}-${i}`}>{describe(r)}</li>
          ))}
        </ul>
        {older > 0 && <p>and {older} older: see `flowkeep sync status`.</p>}
      </div>
    </details>
  );
}

function describe(r: SyncRejection): string {
  const when = formatDistanceToNow(r.at, { addSuffix: true });
  const from = r.device_id ? ` from device ${r.device_id.slice(-8)}` : "";
  return `${when}: ${r.what} ${r.subject ?? r.document}${from}: ${r.reason}`;
}
