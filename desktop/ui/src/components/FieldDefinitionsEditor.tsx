import { useState } from "react";
import type { ConfigType, FieldDef, JsonValue } from "../generated/bindings";

/** A field definition being edited, with a stable id for React. */
export interface DraftField {
  uid: number;
  def: FieldDef;
}

const TYPES: ConfigType[] = ["text", "number", "boolean", "select", "json", "file", "secret"];
const FORMATS = ["", "email", "url", "uuid", "date", "datetime", "semver", "hostname", "ipv4", "path"];
const RULES = ["", "cron", "port", "duration", "semver"];

/** Add, remove, reorder config fields and change their rules. */
export function FieldDefinitionsEditor(props: {
  fields: DraftField[];
  errors: Record<string, string>;
  /** Why a key cannot be saved, by field uid: shown at once, beside it. */
  keyProblems?: Record<number, string>;
  onChange: (fields: DraftField[]) => void;
  onRename: (from: string, to: string) => void;
  nextUid: () => number;
}) {
  const { fields, onChange } = props;
  const set = (i: number, def: FieldDef) => {
    const next = [...fields];
    if (def.key !== fields[i].def.key) props.onRename(fields[i].def.key, def.key);
    next[i] = { ...next[i], def };
    onChange(next);
  };
  const move = (i: number, by: number) => {
    const j = i + by;
    if (j < 0 || j >= fields.length) return;
    const next = [...fields];
    [next[i], next[j]] = [next[j], next[i]];
    onChange(next);
  };
  const add = () => {
    const taken = new Set(fields.map((f) => f.def.key));
    let n = fields.length + 1;
    while (taken.has(`field_${n}`)) n++;
    onChange([...fields, { uid: props.nextUid(), def: { key: `field_${n}`, type: "text" } }]);
  };

  return (
    <fieldset className="definitions">
      <legend>Fields</legend>
      {fields.length === 0 && <p className="empty">No fields yet.</p>}
      <ol>
        {fields.map(({ uid, def }, i) => {
          const name = def.label || def.key;
          const keyProblem = props.keyProblems?.[uid];
          const err = keyProblem ?? props.errors[def.key];
          return (
            <li key={uid} className="definition">
              <div className="definition-row">
                <label>
                  Key
                  <input
                    value={def.key}
                    aria-label={`Key of field ${i + 1}`}
                    aria-invalid={!!keyProblem}
                    onChange={(e) => set(i, { ...def, key: e.target.value.trim() })}
                  />
                </label>
                <label>
                  Type
                  <select value={def.type} aria-label={`Type of ${name}`} onChange={(e) => set(i, retype(def, e.target.value as ConfigType))}>
                    {TYPES.map((t) => (
                      <option key={t}>{t}</option>
                    ))}
                  </select>
                </label>
                <label>
                  Label
                  <input value={def.label ?? ""} aria-label={`Label of ${name}`} onChange={(e) => set(i, { ...def, label: e.target.value || undefined })} />
                </label>
                <label className="inline">
                  <input type="checkbox" checked={!!def.required} aria-label={`${name} is required`} onChange={(e) => set(i, { ...def, required: e.target.checked || undefined })} />
                  Required
                </label>
                <span className="row-actions">
                  <button type="button" aria-label={`Move ${name} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                    ↑
                  </button>
                  <button type="button" aria-label={`Move ${name} down`} disabled={i === fields.length - 1} onClick={() => move(i, 1)}>
                    ↓
                  </button>
                  <button type="button" className="danger" aria-label={`Remove field ${name}`} onClick={() => onChange(fields.filter((_, j) => j !== i))}>
                    Remove
                  </button>
                </span>
              </div>
              <details>
                <summary>Rules of {name}</summary>
                <Rules def={def} name={name} set={(d) => set(i, d)} />
              </details>
              {err && (
                <p className="field-error" role="alert">
                  {err}
                </p>
              )}
            </li>
          );
        })}
      </ol>
      <button type="button" onClick={add}>
        Add field
      </button>
    </fieldset>
  );
}

function Rules(props: { def: FieldDef; name: string; set: (d: FieldDef) => void }) {
  const { def, name, set } = props;
  const num = (v: string) => (v.trim() === "" ? undefined : Number(v));
  return (
    <div className="rules">
      <label>
        Description
        <input value={def.description ?? ""} aria-label={`Description of ${name}`} onChange={(e) => set({ ...def, description: e.target.value || undefined })} />
      </label>
      <DefaultInput def={def} name={name} set={set} />
      {def.type === "number" && (
        <>
          <label>
            Minimum
            <input inputMode="decimal" value={def.min ?? ""} aria-label={`Minimum of ${name}`} onChange={(e) => set({ ...def, min: num(e.target.value) })} />
          </label>
          <label>
            Maximum
            <input inputMode="decimal" value={def.max ?? ""} aria-label={`Maximum of ${name}`} onChange={(e) => set({ ...def, max: num(e.target.value) })} />
          </label>
          <label className="inline">
            <input type="checkbox" checked={!!def.integer} aria-label={`${name} must be a whole number`} onChange={(e) => set({ ...def, integer: e.target.checked || undefined })} />
            Whole number
          </label>
        </>
      )}
      {(def.type === "text" || def.type === "file" || def.type === "secret") && (
        <>
          <label>
            Min length
            <input inputMode="numeric" value={def.min_length ?? ""} aria-label={`Minimum length of ${name}`} onChange={(e) => set({ ...def, min_length: num(e.target.value) })} />
          </label>
          <label>
            Max length
            <input inputMode="numeric" value={def.max_length ?? ""} aria-label={`Maximum length of ${name}`} onChange={(e) => set({ ...def, max_length: num(e.target.value) })} />
          </label>
          <label>
            Pattern
            <input value={def.pattern ?? ""} aria-label={`Pattern of ${name}`} onChange={(e) => set({ ...def, pattern: e.target.value || undefined })} />
          </label>
        </>
      )}
      {def.type === "text" && (
        <>
          <label>
            Format
            <select value={def.format ?? ""} aria-label={`Format of ${name}`} onChange={(e) => set({ ...def, format: e.target.value || undefined })}>
              {FORMATS.map((f) => (
                <option key={f} value={f}>
                  {f || "any"}
                </option>
              ))}
            </select>
          </label>
          <label>
            Custom rule
            <select value={def.rule ?? ""} aria-label={`Custom rule of ${name}`} onChange={(e) => set({ ...def, rule: e.target.value || undefined })}>
              {RULES.map((r) => (
                <option key={r} value={r}>
                  {r || "none"}
                </option>
              ))}
            </select>
          </label>
        </>
      )}
      {def.type === "number" && (
        <label>
          Custom rule
          <select value={def.rule ?? ""} aria-label={`Custom rule of ${name}`} onChange={(e) => set({ ...def, rule: e.target.value || undefined })}>
            <option value="">none</option>
            <option value="port">port</option>
          </select>
        </label>
      )}
      {def.type === "select" && (
        <label>
          Options (comma-separated)
          <input
            defaultValue={(def.options ?? []).join(", ")}
            aria-label={`Options of ${name}`}
            onBlur={(e) => set({ ...def, options: e.target.value.split(",").map((o) => o.trim()).filter((o) => o !== "") })}
          />
        </label>
      )}
      {def.type === "json" && <JsonText label="JSON Schema" what={`JSON Schema of ${name}`} value={def.schema} onValue={(schema) => set({ ...def, schema })} />}
      {def.type === "file" && (
        <>
          <label>
            Extensions (comma-separated)
            <input
              defaultValue={(def.extensions ?? []).join(", ")}
              aria-label={`Extensions of ${name}`}
              onBlur={(e) => {
                const exts = e.target.value.split(",").map((x) => x.trim().replace(/^\./, "")).filter((x) => x !== "");
                set({ ...def, extensions: exts.length ? exts : undefined });
              }}
            />
          </label>
          <label className="inline">
            <input type="checkbox" checked={!!def.must_exist} aria-label={`${name} must exist`} onChange={(e) => set({ ...def, must_exist: e.target.checked || undefined })} />
            Must exist
          </label>
        </>
      )}
    </div>
  );
}

/** A new type keeps only the rules that still mean something. */
function retype(def: FieldDef, type: ConfigType): FieldDef {
  return { key: def.key, type, label: def.label, description: def.description, required: def.required };
}

/**
 * The value a field takes when none is given, typed as the field is: a
 * checkbox for booleans, JSON for json, a number for numbers.
 */
function DefaultInput(props: { def: FieldDef; name: string; set: (d: FieldDef) => void }) {
  const { def, name, set } = props;
  const label = `Default of ${name}`;
  if (def.type === "boolean") {
    return (
      <label className="inline">
        <input type="checkbox" checked={def.default === true} aria-label={label} onChange={(e) => set({ ...def, default: e.target.checked || undefined })} />
        On by default
      </label>
    );
  }
  if (def.type === "json") {
    return <JsonText label="Default" what={label} value={def.default} onValue={(v) => set({ ...def, default: v })} />;
  }
  const shown = def.default === undefined || def.default === null ? "" : String(def.default);
  return (
    <label>
      Default
      <input
        value={shown}
        aria-label={label}
        inputMode={def.type === "number" ? "decimal" : undefined}
        onChange={(e) => {
          const raw = e.target.value;
          if (raw.trim() === "") return set({ ...def, default: undefined });
          if (def.type === "number") {
            const n = Number(raw);
            // A number that does not parse yet stays text; the server says why.
            return set({ ...def, default: Number.isFinite(n) ? n : raw });
          }
          set({ ...def, default: raw });
        }}
      />
    </label>
  );
}

/** JSON typed as text, taken on blur once it parses; says so when it does not. */
function JsonText(props: { label: string; what: string; value: unknown; onValue: (v: JsonValue | undefined) => void }) {
  const [text, setText] = useState(() => (props.value === undefined || props.value === null ? "" : JSON.stringify(props.value, null, 2)));
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <label className="json-text">
      {props.label}
      <textarea
        className="code"
        rows={3}
        spellCheck={false}
        value={text}
        aria-label={props.what}
        aria-invalid={!!problem}
        onChange={(e) => setText(e.target.value)}
        onBlur={() => {
          if (text.trim() === "") {
            setProblem(null);
            return props.onValue(undefined);
          }
          try {
            props.onValue(JSON.parse(text) as JsonValue);
            setProblem(null);
          } catch (e) {
            setProblem(`not valid JSON: ${(e as Error).message}`);
          }
        }}
      />
      {problem && (
        <span className="field-error" role="alert">
          {props.what}: {problem}
        </span>
      )}
    </label>
  );
}
