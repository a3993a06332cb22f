import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import { SyncStatus } from "./SyncStatus";
import type { SyncStatus as Status } from "../generated/bindings";
import { FakeSource } from "../api/fakeEventSource";
import { act } from "react";

const base: Status = {
  configured: true,
  server: "ws://127.0.0.1:1/sync",
  join: "flowkeep-join:ws://127.0.0.1:1/sync#automerge:x",
  last_sync: Date.now() - 60_000,
  pending_local_changes: 0,
  device_id: "01a23b60-d1ea-7725-89aa-d505e2f68b1e",
  token_fingerprint: "1a2b3c4d",
  rejected: 0,
  rejections: [],
  last_error: null,
  server_limit: null,
  unconfirmed: 0,
};

function answer(status: Status) {
  vi.stubGlobal(
    "fetch",
    vi.fn(async () => new Response(JSON.stringify(status), { status: 200 })),
  );
}

beforeEach(() => sessionStorage.setItem("flowkeep.token", "t"));
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

describe("SyncStatus", () => {
  it("says nothing about rejections when there are none, and shows the token's fingerprint only", async () => {
    answer(base);
    render(<SyncStatus />);
    const s = await screen.findByRole("status", { name: "Sync status" });
    await waitFor(() => expect(s.textContent).toMatch(/^Sync on: synced/));
    expect(s.getAttribute("title")).toBe("ws://127.0.0.1:1/sync · credential 1a2b3c4d");
    expect(screen.queryByText(/rejected/)).toBeNull();
  });

  it("says why the last sync failed, in the error style, until one succeeds", async () => {
    const message = "the sync server refused this device (HTTP 403): this device (0190) was revoked in workspace team";
    answer({ ...base, last_error: { at: Date.now() - 5_000, message } });
    render(<SyncStatus />);
    const s = await screen.findByRole("status", { name: "Sync status" });
    await waitFor(() => expect(s.textContent).toMatch(/^Sync failed .*ago: the sync server refused this device/));
    expect(s.textContent).toContain("was revoked in workspace team");
    expect(s.className).toContain("error");
  });

  it("says what the server no longer takes when the workspace is at a limit, and nothing otherwise", async () => {
    const limit =
      "workspace team holds 100000 documents, this server's limit (--max-docs-per-workspace 100000): the server takes no new workflows or run logs; new ones stay on this device until the operator raises the limit";
    answer({ ...base, server_limit: limit });
    render(<SyncStatus />);
    const note = await screen.findByRole("note", { name: "Sync server limit" });
    expect(note.textContent).toBe(`The sync server says: ${limit}`);
    const s = screen.getByRole("status", { name: "Sync status" });
    expect(s.textContent).toMatch(/^Sync on: synced/);
    cleanup();
    answer(base);
    render(<SyncStatus />);
    await screen.findByRole("status", { name: "Sync status" });
    expect(screen.queryByRole("note", { name: "Sync server limit" })).toBeNull();
  });

  it("says how many documents the server had not taken when the last sync ended", async () => {
    answer({ ...base, pending_local_changes: 1, unconfirmed: 2 });
    render(<SyncStatus />);
    const s = await screen.findByRole("status", { name: "Sync status" });
    await waitFor(() => expect(s.textContent).toMatch(/^Sync on: synced .*, 1 change to send, 2 documents not on the server yet$/));
  });

  it("shows how many were rejected and why", async () => {
    answer({
      ...base,
      rejected: 3,
      rejections: [
        { at: Date.now(), what: "run", document: "w/d/2026-01", subject: null, device_id: "0190a4b2-7c3d-7e4f-8a5b-00000000beef", reason: 'run "../../victim": id: not a UUID' },
        { at: Date.now(), what: "workflow", document: "docid", subject: "w1", device_id: null, reason: "name: must be 1 to 200 characters long" },
      ],
    });
    render(<SyncStatus />);
    expect(await screen.findByText("3 rejected")).toBeTruthy();
    const list = screen.getByRole("region", { name: "Rejected sync data" });
    expect(list.textContent).toContain('run w/d/2026-01 from device 0000beef: run "../../victim": id: not a UUID');
    expect(list.textContent).toContain("workflow w1: name: must be 1 to 200 characters long");
    expect(list.textContent).toContain("and 1 older");
  });

  it("follows the state the app pushes, without asking again", async () => {
    answer(base);
    vi.stubGlobal("EventSource", FakeSource);
    render(<SyncStatus />);
    const s = await screen.findByRole("status", { name: "Sync status" });
    await waitFor(() => expect(s.textContent).toMatch(/^Sync on: synced/));
    const asked = (fetch as unknown as { mock: { calls: unknown[] } }).mock.calls.length;
    act(() => FakeSource.last!.send("sync", { ...base, pending_local_changes: 3 }));
    expect(s.textContent).toMatch(/3 changes to send$/);
    act(() => FakeSource.last!.send("sync", { ...base, last_error: { at: Date.now(), message: "the server is not reachable" } }));
    expect(s.textContent).toMatch(/^Sync failed .*: the server is not reachable$/);
    expect((fetch as unknown as { mock: { calls: unknown[] } }).mock.calls.length).toBe(asked);
  });
});
