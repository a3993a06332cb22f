// A readable account of how a config's field definitions changed, for the
// audit trail (the event stores the whole list before and after).

import type { JsonValue } from "../generated/bindings";

type Def = Record<string, JsonValue> & { key: string };

function defs(v: JsonValue): Def[] | null {
  if (!Array.isArray(v)) return v === null ? [] : null;
  const out: Def[] = [];
  for (const d of v) {
    if (typeof d !== "object" || d === null || Array.isArray(d) || typeof d.key !== "string") return null;
    out.push(d as Def);
  }
  return out;
}

/** One line per added, removed, changed or moved field; null if the values are not definition lists. */
export function describeDefinitionsChange(old: JsonValue, now: JsonValue): string[] | null {
  const before = defs(old);
  const after = defs(now);
  if (!before || !after) return null;
  const byKey = new Map(before.map((d) => [d.key, d]));
  const lines: string[] = [];
  for (const d of after) {
    const was = byKey.get(d.key);
    if (!was) {
      lines.push(`added ${d.key} (${String(d.type)})`);
      continue;
    }
    const changes: string[] = [];
    for (const prop of new Set([...Object.keys(was), ...Object.keys(d)])) {
      if (prop === "key") continue;
      const a = JSON.stringify(was[prop] ?? null);
      const b = JSON.stringify(d[prop] ?? null);
      if (a !== b) changes.push(`${prop} ${a === "null" ? "—" : a} → ${b === "null" ? "—" : b}`);
    }
    if (changes.length) lines.push(`${d.key}: ${changes.join(", ")}`);
  }
  const kept = new Set(after.map((d) => d.key));
  for (const d of before) if (!kept.has(d.key)) lines.push(`removed ${d.key}`);
  const order = (list: Def[]) => list.map((d) => d.key).filter((k) => byKey.has(k) && kept.has(k));
  if (order(before).join() !== order(after).join()) lines.push(`order: ${after.map((d) => d.key).join(", ")}`);
  return lines;
}
