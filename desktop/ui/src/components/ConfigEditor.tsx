import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useForm, type Resolver } from "react-hook-form";
import { zodResolver } from "@hookform/resolvers/zod";
import { useConfigEditor } from "../hooks/useConfigEditor";
import { fieldErrorsUnder } from "../api/errors";
import { call } from "../api/transport";
import {
  formName,
  formValuesOf,
  keyProblem,
  toConfigValues,
  toFormValue,
  valuesSchema,
  type FormValues,
} from "../config/schema";
import { forgetDraft, rememberDraft } from "../config/drafts";
import { threeWay, type ConfigDoc, type ThreeWay } from "../config/threeWay";
import type { ConfigOut, CrossRule, FieldConflict, FieldDef, FieldError, JsonValue } from "../generated/bindings";
import { FieldInput } from "./FieldInput";
import { FieldDefinitionsEditor, type DraftField } from "./FieldDefinitionsEditor";
import { CrossRulesEditor } from "./CrossRulesEditor";
import { parseRunDraft, runDraftOf, RunSettings, type RunDraft } from "./RunSettings";
import { LoadError } from "./LoadError";

/**
 * A workflow's typed configuration: a form built from the field definitions
 * (checked in the browser by a zod schema derived from the same definitions,
 * then by the server), and an editor for the definitions themselves. Values
 * and definitions are saved together.
 */
export function ConfigEditor(props: {
  workflowId: string;
  conflicts: FieldConflict[];
  mergeErrors: FieldError[];
  /** The workflow's revision as last seen; a newer one means it changed elsewhere. */
  revision: number;
  onSaved: () => void;
  onBrowse?: (field: FieldDef) => Promise<string | null>;
  /** Told whether there are unsaved edits, so leaving can ask first. */
  onEditedChange?: (edited: boolean) => void;
}) {
  const editor = useConfigEditor(props.workflowId);
  const { config } = editor;
  const uid = useRef(0);
  const nextUid = useCallback(() => ++uid.current, []);
  const [draft, setDraft] = useState<DraftField[]>([]);
  const [runDraft, setRunDraft] = useState<RunDraft>(runDraftOf(null, null));
  const [rulesDraft, setRulesDraft] = useState<CrossRule[]>([]);
  const [serverErrors, setServerErrors] = useState<FieldError[]>([]);
  const [status, setStatus] = useState<{ text: string; error: boolean; conflict?: boolean } | null>(null);
  // A save refused because the configuration changed elsewhere: the latest
  // version and the edits made here laid over it.
  const [clash, setClash] = useState<{ latest: ConfigOut; merge: ThreeWay } | null>(null);
  // Edits to lay over the next loaded version ("Take theirs").
  const pendingEdits = useRef<ConfigDoc | null>(null);
  const draftRef = useRef<FieldDef[]>([]);
  draftRef.current = draft.map((d) => d.def);

  // The schema follows the definitions being edited, not only the saved ones.
  const resolver = useCallback<Resolver<FormValues>>(
    (values, ctx, options) =>
      zodResolver(valuesSchema(draftRef.current))(values, ctx, options) as ReturnType<Resolver<FormValues>>,
    [],
  );
  const form = useForm<FormValues>({ resolver, mode: "onChange" });
  const { register, handleSubmit, reset, formState, getValues, setValue } = form;

  const startFrom = useCallback(
    (c: NonNullable<typeof config>) => {
      setDraft(c.fields.map((def) => ({ uid: nextUid(), def })));
      setRunDraft(runDraftOf(c.run, c.retention));
      setRulesDraft(c.rules ?? []);
      reset(formValuesOf(c));
      setServerErrors([]);
    },
    [nextUid, reset],
  );

  useEffect(() => {
    if (!config) return;
    startFrom(config);
    const edits = pendingEdits.current;
    if (!edits) return;
    pendingEdits.current = null;
    setDraft(edits.fields.map((def) => ({ uid: nextUid(), def })));
    setRunDraft(runDraftOf(edits.run, edits.retention));
    setRulesDraft(edits.rules);
    for (const def of edits.fields) {
      setValue(formName(def.key), toFormValue(def, edits.values[def.key] ?? null), { shouldDirty: true });
    }
  }, [config, startFrom, nextUid, setValue]);

  // Changed elsewhere: load it, unless that would throw away edits here.
  const definitionsEdited = config !== null && JSON.stringify(draft.map((d) => d.def)) !== JSON.stringify(config.fields);
  const runEdited = config !== null && JSON.stringify(runDraft) !== JSON.stringify(runDraftOf(config.run, config.retention));
  const rulesEdited = config !== null && JSON.stringify(rulesDraft) !== JSON.stringify(config.rules ?? []);
  const edited = formState.isDirty || definitionsEdited || runEdited || rulesEdited;
  const { onEditedChange } = props;
  useEffect(() => {
    onEditedChange?.(edited);
  }, [edited, onEditedChange]);
  useEffect(() => () => onEditedChange?.(false), [onEditedChange]);
  // Kept outside React too: if rendering ever fails, the error screen can
  // still hand the draft back.
  const watched = form.watch();
  useEffect(() => {
    if (!edited) return;
    rememberDraft(props.workflowId, {
      fields: draft.map((d) => d.def),
      values: toConfigValues(watched as Record<string, JsonValue | undefined>),
      run: runDraft,
      rules: rulesDraft,
    });
  }, [edited, props.workflowId, draft, watched, runDraft, rulesDraft]);
  const keyProblems = useMemo(() => {
    const keys = draft.map((d) => d.def.key);
    const out: Record<number, string> = {};
    for (const d of draft) {
      const p = keyProblem(d.def.key, keys);
      if (p) out[d.uid] = p;
    }
    return out;
  }, [draft]);
  const runParsed = parseRunDraft(runDraft);
  const stale = config !== null && props.revision > config.revision;
  const { load } = editor;
  useEffect(() => {
    if (stale && !edited) void load();
  }, [stale, edited, load]);

  const changeDefinitions = (next: DraftField[]) => {
    const before = new Set(draft.map((d) => d.def.key));
    for (const d of next) {
      const current = getValues(formName(d.def.key));
      const old = draft.find((x) => x.uid === d.uid);
      if (!before.has(d.def.key) || current === undefined || (old && old.def.type !== d.def.type)) {
        setValue(formName(d.def.key), toFormValue(d.def, d.def.default ?? null));
      }
    }
    setDraft(next);
  };

  const rename = (from: string, to: string) => {
    if (from !== to) setValue(formName(to), getValues(formName(from)) ?? "");
  };

  const onSubmit = handleSubmit(
    async (parsed) => {
      setStatus(null);
      if (Object.keys(keyProblems).length > 0) {
        setStatus({ text: "Not saved: fix the field keys marked below.", error: true });
        return;
      }
      if (Object.keys(runParsed.errors).length > 0) {
        setStatus({ text: "Not saved: fix the run settings.", error: true });
        return;
      }
      const values = toConfigValues(parsed as Record<string, JsonValue | undefined>);
      const result = await editor.save(draftRef.current, values, runParsed.value, rulesDraft);
      if (result.ok) saved();
      else if (result.conflict && config) {
        const mine: ConfigDoc = {
          fields: draftRef.current,
          values,
          rules: rulesDraft,
          run: runParsed.value.run ?? null,
          retention: runParsed.value.retention ?? null,
        };
        await offerChoice(docOf(config), mine);
      } else refused(result);
    },
    // Every problem shows on the first save, not only the ones typed into.
    () => setStatus({ text: "Not saved: fix the values marked below.", error: true }),
  );

  const saved = () => {
    setServerErrors([]);
    setClash(null);
    forgetDraft(props.workflowId);
    setStatus({ text: "Saved.", error: false });
    props.onSaved();
  };
  const refused = (result: { errors: FieldError[]; message: string }) => {
    setServerErrors(result.errors);
    setStatus({ text: `Not saved: ${result.message}`, error: true });
  };
  // Changed elsewhere since `base` was loaded: read the latest and offer
  // Keep mine / Take theirs / Reload, with what both sides changed.
  // What this form would save now, or null while it holds an error (the
  // save says what).
  const draftDoc = (): ConfigDoc | null => {
    const parsed = valuesSchema(draftRef.current).safeParse(getValues());
    if (!parsed.success || Object.keys(keyProblems).length > 0 || Object.keys(runParsed.errors).length > 0) return null;
    return {
      fields: draftRef.current,
      values: toConfigValues(parsed.data as Record<string, JsonValue | undefined>),
      rules: rulesDraft,
      run: runParsed.value.run ?? null,
      retention: runParsed.value.retention ?? null,
    };
  };
  const offerChoice = async (base: ConfigDoc, mine: ConfigDoc, asSaved = true) => {
    let latest: ConfigOut;
    try {
      latest = await editor.latest();
    } catch {
      setStatus({ text: "Not saved: this configuration was changed elsewhere, and the latest version could not be read.", error: true, conflict: true });
      return;
    }
    const merge = threeWay(base, mine, docOf(latest));
    setClash({ latest, merge });
    const said = asSaved ? "Not saved: this configuration was changed elsewhere (another device or window) since you opened it" : "This configuration was just changed elsewhere (another device or window) while you were editing it";
    setStatus({
      text:
        merge.clashes.length === 0
          ? `${said}, but not in what you edited. Keep mine saves your edits on top of the latest version.`
          : `${said}, and some of what you edited was changed there too:`,
      error: true,
      conflict: true,
    });
  };
  // A change from elsewhere while editing: offer the choice at once, not
  // only when saving.
  const offered = useRef<number | null>(null);
  useEffect(() => {
    if (!stale || !edited || !config || clash || offered.current === props.revision) return;
    const mine = draftDoc();
    if (!mine) return;
    offered.current = props.revision;
    void offerChoice(docOf(config), mine, false);
  });
  const keepMine = async () => {
    if (!clash) return;
    const base = docOf(clash.latest);
    const result = await editor.saveDocument(clash.merge.keepMine, clash.latest.revision);
    if (result.ok) saved();
    else if (result.conflict) await offerChoice(base, clash.merge.keepMine);
    else {
      setClash(null);
      refused(result);
    }
  };
  const takeTheirs = () => {
    if (!clash) return;
    const keptMine = clash.merge.mineKeptBesideTheirs;
    pendingEdits.current = keptMine ? clash.merge.takeTheirs : null;
    setClash(null);
    setServerErrors([]);
    editor.adopt(clash.latest);
    setStatus({
      text: keptMine
        ? "Showing the latest version with your other edits laid over it; they are not saved yet."
        : "Showing the latest version.",
      error: false,
    });
  };
  const reloadLatest = () => {
    setStatus(null);
    setClash(null);
    forgetDraft(props.workflowId);
    void load();
  };

  const valueErrors = useMemo(
    () => fieldErrorsUnder([...serverErrors, ...props.mergeErrors], "values."),
    [serverErrors, props.mergeErrors],
  );
  const definitionErrors = useMemo(() => fieldErrorsUnder(serverErrors, "fields."), [serverErrors]);
  const runErrors = useMemo(
    () => ({
      ...fieldErrorsUnder(serverErrors, "run."),
      ...fieldErrorsUnder(serverErrors, "retention."),
      // Schedule problems by their own field (`schedule.cron`).
      ...Object.fromEntries(
        Object.entries(fieldErrorsUnder(serverErrors, "run.schedule.")).map(([k, v]) => [`schedule.${k}`, v]),
      ),
      ...runParsed.errors,
    }),
    [serverErrors, runParsed.errors],
  );
  const ruleErrors = useMemo(() => {
    const out: Record<string, string> = {};
    for (const e of serverErrors) {
      const m = /^rules\[(\d+)\]/.exec(e.field);
      if (m) out[m[1]] = out[m[1]] ? `${out[m[1]]}; ${e.message}` : e.message;
    }
    return out;
  }, [serverErrors]);
  const placed = ["values.", "fields.", "run.", "retention.", "rules["];
  const otherErrors = serverErrors.filter((e) => !placed.some((p) => e.field.startsWith(p)));
  const conflictOf = (key: string) => props.conflicts.find((c) => c.field === `config.values.${key}`);
  const otherConflicts = props.conflicts.filter((c) => !c.field.startsWith("config.values."));

  if (editor.loading && !config) return <p>Loading configuration…</p>;
  if (editor.error) {
    return (
      <LoadError what="the configuration" error={editor.error} onRetry={() => void editor.load()} />
    );
  }
  if (!config) return null;

  return (
    <form className="config-editor" onSubmit={onSubmit} noValidate aria-label="Configuration">
      {stale && edited && (
        <div role="alert" className="warning">
          This configuration changed elsewhere (another device or process) while you were editing. Your edits here
          are kept until you choose below; <em>Cancel</em> loads the latest.
        </div>
      )}
      {props.mergeErrors.length > 0 && (
        <div role="alert" className="warning">
          Changes merged from another device left this configuration breaking its rules ({props.mergeErrors.length}{" "}
          problem{props.mergeErrors.length === 1 ? "" : "s"}, marked below). Fix and save.
        </div>
      )}
      {otherConflicts.length > 0 && (
        <div className="warning" role="note">
          Edited on several devices at once:{" "}
          {otherConflicts.map((c) => (
            <span key={c.field}>
              <code>{c.field}</code> ({c.values.map((v) => JSON.stringify(v)).join(" vs ")}){" "}
            </span>
          ))}
          — the first value is in effect.
        </div>
      )}
      <fieldset className="values">
        <legend>Values</legend>
        {draft.length === 0 && <p className="empty">This workflow has no config fields. Add one below.</p>}
        {draft.map(({ uid: id, def }) => {
          const clientError = formState.errors[formName(def.key)]?.message as string | undefined;
          const serverError = valueErrors[def.key];
          const conflict = conflictOf(def.key);
          const describedBy = `help-${def.key} error-${def.key}`;
          return (
            <div key={id} className={`field field-${def.type}`}>
              <label htmlFor={`value-${def.key}`}>
                {def.label || def.key}
                {def.required && <span aria-hidden="true"> *</span>}
                <span className="type"> ({def.type})</span>
              </label>
              <FieldInput
                // A new type is a new input element (a reused text input
                // would hand its string to a checkbox's value).
                key={def.type}
                field={def}
                register={register}
                control={form.control}
                invalid={!!(clientError || serverError)}
                describedBy={describedBy}
                onReveal={
                  def.type === "secret"
                    ? async () => {
                        const r = await call("reveal_config", { workflow_id: props.workflowId });
                        const v = r.values[def.key];
                        return typeof v === "string" ? v : null;
                      }
                    : undefined
                }
                onBrowse={
                  props.onBrowse && def.type === "file"
                    ? async () => {
                        const path = await props.onBrowse?.(def);
                        if (path) setValue(def.key, path, { shouldValidate: true, shouldDirty: true });
                      }
                    : undefined
                }
              />
              <p id={`help-${def.key}`} className="help">
                {def.description ?? ""}
                {conflict && (
                  <span className="conflict">
                    {" "}
                    Edited on several devices: {conflict.values.map((v) => JSON.stringify(v)).join(" vs ")}; the first is in effect.
                  </span>
                )}
              </p>
              <p id={`error-${def.key}`} className="field-error" role={clientError || serverError ? "alert" : undefined}>
                {clientError ?? serverError ?? ""}
              </p>
            </div>
          );
        })}
      </fieldset>
      <RunSettings workflowId={props.workflowId} draft={runDraft} errors={runErrors} onChange={setRunDraft} />
      <CrossRulesEditor rules={rulesDraft} fields={draft.map((d) => d.def)} errors={ruleErrors} onChange={setRulesDraft} />
      <FieldDefinitionsEditor
        fields={draft}
        errors={definitionErrors}
        keyProblems={keyProblems}
        onChange={changeDefinitions}
        onRename={rename}
        nextUid={nextUid}
      />
      {otherErrors.length > 0 && (
        <ul role="alert" className="error">
          {otherErrors.map((e, i) => (
            <li key={i}>
              <code>{e.field}</code>: {e.message}
            </li>
          ))}
        </ul>
      )}
      {clash && clash.merge.clashes.length > 0 && (
        <ul className="clashes" aria-label="Edited here and elsewhere">
          {clash.merge.clashes.map((c) => (
            <li key={c.part}>
              <strong>{c.label}</strong>: yours <code>{shown(c.mine)}</code>, theirs <code>{shown(c.theirs)}</code>
            </li>
          ))}
        </ul>
      )}
      <div className="actions sticky">
        <span role="status" aria-live="polite" className={status?.error ? "notice error" : "notice"}>
          {status?.text ?? ""}
        </span>
        {status?.conflict && clash && (
          <>
            <button type="button" onClick={() => void keepMine()} disabled={editor.saving}>
              Keep mine
            </button>
            <button type="button" onClick={takeTheirs} disabled={editor.saving}>
              Take theirs
            </button>
          </>
        )}
        {status?.conflict && (
          <button type="button" onClick={reloadLatest} title="Show the latest version and drop your edits">
            Reload
          </button>
        )}
        <button
          type="button"
          onClick={() => {
            setClash(null);
            setStatus(null);
            if (stale) void load();
            else if (config) startFrom(config);
          }}
          disabled={editor.saving}
        >
          Cancel
        </button>
        <button type="submit" className="primary" disabled={editor.saving}>
          {editor.saving ? "Saving…" : "Save configuration"}
        </button>
      </div>
    </form>
  );
}

/** The parts of a loaded configuration the editor saves. */
function docOf(c: ConfigOut): ConfigDoc {
  return {
    fields: c.fields,
    values: Object.fromEntries(Object.entries(c.values).filter(([, v]) => v !== undefined)) as Record<string, JsonValue>,
    rules: c.rules ?? [],
    run: c.run ?? null,
    retention: c.retention ?? null,
  };
}

/** A value as a person reads it: short, "(removed)" when gone. */
function shown(v: JsonValue | undefined): string {
  if (v === undefined) return "(removed)";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 79)}…` : s;
}
