import { call } from "../api/transport";

/** Most ids one `workflow_names` request takes. */
const CHUNK = 500;

/**
 * The names of the workflows `ids` name (null for one deleted since), for
 * views that list runs of many workflows (a run carries only its
 * workflow's id). Ids in `known` are not asked again; the rest are asked in
 * one request (per 500).
 */
export async function workflowNames(
  ids: Iterable<string>,
  known: ReadonlyMap<string, string | null> = new Map(),
): Promise<Map<string, string | null>> {
  const names = new Map<string, string | null>();
  const unknown: string[] = [];
  for (const id of new Set(ids)) {
    if (known.has(id)) names.set(id, known.get(id) ?? null);
    else unknown.push(id);
  }
  for (let i = 0; i < unknown.length; i += CHUNK) {
    for (const n of await call("workflow_names", { ids: unknown.slice(i, i + CHUNK) })) names.set(n.id, n.name);
  }
  return names;
}
