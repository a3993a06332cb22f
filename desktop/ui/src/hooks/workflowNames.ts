import { call } from "../api/transport";

/**
 * The names of the workflows `ids` name (null for one deleted since), asked
 * once each, all at the same time. For views that list runs of many
 * workflows (a run carries only its workflow's id).
 */
export async function workflowNames(ids: Iterable<string>): Promise<Map<string, string | null>> {
  const names = new Map<string, string | null>();
  await Promise.all(
    [...new Set(ids)].map(async (id) => {
      try {
        names.set(id, (await call("get_workflow", { id })).name);
      } catch {
        names.set(id, null);
      }
    }),
  );
  return names;
}
