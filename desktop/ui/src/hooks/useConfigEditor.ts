import { useCallback, useEffect, useState } from "react";
import { call } from "../api/transport";
import { ApiError, messageOf } from "../api/errors";
import type { ConfigDoc } from "../config/threeWay";
import type { ConfigOut, CrossRule, FieldDef, FieldError, JsonValue, RetentionPolicy, RunSpec } from "../generated/bindings";

export type SaveResult =
  | { ok: true; config: ConfigOut }
  | { ok: false; errors: FieldError[]; message: string; conflict: boolean };

/**
 * One workflow's config document: load it, and save values and field
 * definitions together as one `update_config` at the revision that was
 * loaded (so a concurrent edit is reported, not overwritten). The server's
 * field errors come back for the form to show beside each field.
 */
export function useConfigEditor(workflowId: string | null) {
  const [config, setConfig] = useState<ConfigOut | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  const load = useCallback(async () => {
    if (!workflowId) {
      setConfig(null);
      return;
    }
    setLoading(true);
    try {
      setConfig(await call("get_config", { workflow_id: workflowId }));
      setError(null);
    } catch (e) {
      setConfig(null);
      setError(messageOf(e));
    } finally {
      setLoading(false);
    }
  }, [workflowId]);

  useEffect(() => {
    void load();
  }, [load]);

  /** Saves `document` as the next version after `revision`. */
  const saveDocument = useCallback(
    async (document: ConfigDoc, revision: number): Promise<SaveResult> => {
      if (!workflowId) return { ok: false, errors: [], message: "nothing loaded", conflict: false };
      setSaving(true);
      try {
        const { run, retention, ...rest } = document;
        const saved = await call("update_config", {
          workflow_id: workflowId,
          config: { ...rest, ...(run ? { run } : {}), ...(retention ? { retention } : {}) } as unknown as JsonValue,
          expected_revision: revision,
        });
        setConfig(saved);
        return { ok: true, config: saved };
      } catch (e) {
        const err = ApiError.from(e);
        return { ok: false, errors: err.fields, message: err.message, conflict: err.code === "conflict" };
      } finally {
        setSaving(false);
      }
    },
    [workflowId],
  );

  const save = useCallback(
    async (
      fields: FieldDef[],
      values: Record<string, JsonValue>,
      // Absent: kept as loaded.
      runSettings?: { run?: RunSpec; retention?: RetentionPolicy },
      rules?: CrossRule[],
    ): Promise<SaveResult> => {
      if (!config) return { ok: false, errors: [], message: "nothing loaded", conflict: false };
      const { run, retention } = runSettings ?? { run: config.run ?? undefined, retention: config.retention ?? undefined };
      return saveDocument({ fields, rules: rules ?? config.rules ?? [], values, run, retention }, config.revision);
    },
    [config, saveDocument],
  );

  /** The latest version, without showing it yet. */
  const latest = useCallback(async () => {
    if (!workflowId) throw new Error("nothing loaded");
    return await call("get_config", { workflow_id: workflowId });
  }, [workflowId]);

  return { config, loading, error, saving, load, save, saveDocument, latest, adopt: setConfig };
}
