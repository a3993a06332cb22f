import type { Workflow } from "../generated/bindings";

/** One part of what runs here that differs from what this device approved. */
export interface UnapprovedChange {
  field: "config.run" | "config.retention";
  approved: unknown;
  now: unknown;
}

/**
 * What changed on another device since this device approved the workflow's
 * run spec and retention policy (the same comparison the server makes).
 */
export function unapprovedChanges(wf: Workflow): UnapprovedChange[] {
  const out: UnapprovedChange[] = [];
  const approved = wf.approval.approved_spec;
  const pairs: [UnapprovedChange["field"], unknown, unknown][] = [
    ["config.run", approved.run ?? null, wf.config.run ?? null],
    ["config.retention", approved.retention ?? null, wf.config.retention ?? null],
  ];
  for (const [field, was, now] of pairs) {
    if (canonical(was) !== canonical(now)) out.push({ field, approved: was, now });
  }
  return out;
}

/** JSON with sorted keys, so key order never reads as a change. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : x,
  );
}
