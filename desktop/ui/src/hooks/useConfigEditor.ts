import { useCallback, useEffect, useState } from "react";
import { call } from "../api/transport";
import { ApiError, messageOf } from "../api/errors";
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

  const save = useCallback(
    async (
      fields: FieldDef[],
      values: Record<string, JsonValue>,
      // Absent: kept as loaded.
      runSettings?: { run?: RunSpec; retention?: RetentionPolicy },
      rules?: CrossRule[],
    ): Promise<SaveResult> => {
      if (!config || !workflowId) return { ok: false, errors: [], message: "nothing loaded", conflict: false };
      setSaving(true);
      try {
        const { run, retention } = runSettings ?? { run: config.run ?? undefined, retention: config.retention ?? undefined };
        const document = {
          fields,
          rules: rules ?? config.rules ?? [],
          values,
          ...(run ? { run } : {}),
          ...(retention ? { retention } : {}),
        };
        const saved = await call("update_config", {
          workflow_id: workflowId,
          config: document as unknown as JsonValue,
          expected_revision: config.revision,
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
    [config, workflowId],
  );

  return { config, loading, error, saving, load, save };
}
