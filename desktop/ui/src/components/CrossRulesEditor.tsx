import type { CrossRule, FieldDef } from "../generated/bindings";

const KINDS = [
  { rule: "less_than", label: "is less than" },
  { rule: "required_if", label: "is required when" },
  { rule: "one_of_required", label: "at least one has a value" },
] as const;

/** Rules over several fields; the server checks them on every save. */
export function CrossRulesEditor(props: { rules: CrossRule[]; fields: FieldDef[]; errors: Record<string, string>; onChange: (rules: CrossRule[]) => void }) {
  const { rules, fields, onChange } = props;
  const keys = fields.map((f) => f.key).filter((k) => k !== "");
  const set = (i: number, r: CrossRule) => onChange(rules.map((x, j) => (j === i ? r : x)));
  const pick = (value: string | undefined, label: string, on: (v: string) => void) => (
    <select value={value ?? ""} aria-label={label} onChange={(e) => on(e.target.value)}>
      <option value="">— field —</option>
      {keys.map((k) => (
        <option key={k} value={k}>
          {k}
        </option>
      ))}
    </select>
  );
  return (
    <fieldset className="cross-rules">
      <legend>Rules across fields</legend>
      {rules.length === 0 && <p className="empty">No rules across fields.</p>}
      <ol>
        {rules.map((r, i) => {
          const n = i + 1;
          const error = props.errors[String(i)];
          return (
            <li key={i} className="cross-rule">
              <select value={r.rule} aria-label={`Kind of rule ${n}`} onChange={(e) => set(i, { rule: e.target.value })}>
                {KINDS.map((k) => (
                  <option key={k.rule} value={k.rule}>
                    {k.rule.replaceAll("_", " ")}
                  </option>
                ))}
              </select>
              {r.rule === "less_than" && (
                <>
                  {pick(r.fields?.[0], `Smaller field of rule ${n}`, (v) => set(i, { ...r, fields: [v, r.fields?.[1] ?? ""] }))}
                  <span>{"<"}</span>
                  {pick(r.fields?.[1], `Larger field of rule ${n}`, (v) => set(i, { ...r, fields: [r.fields?.[0] ?? "", v] }))}
                </>
              )}
              {r.rule === "required_if" && (
                <>
                  {pick(r.field ?? undefined, `Required field of rule ${n}`, (v) => set(i, { ...r, field: v }))}
                  <span>is required when</span>
                  {pick(r.if_field ?? undefined, `Condition field of rule ${n}`, (v) => set(i, { ...r, if_field: v }))}
                  <span>equals</span>
                  <input
                    aria-label={`Value of rule ${n}`}
                    value={r.equals === undefined || r.equals === null ? "" : typeof r.equals === "string" ? r.equals : JSON.stringify(r.equals)}
                    onChange={(e) => set(i, { ...r, equals: parseLoose(e.target.value) })}
                  />
                </>
              )}
              {r.rule === "one_of_required" && (
                <span className="choices" role="group" aria-label={`Fields of rule ${n}`}>
                  {keys.map((k) => (
                    <label key={k} className="inline">
                      <input
                        type="checkbox"
                        checked={(r.fields ?? []).includes(k)}
                        onChange={(e) =>
                          set(i, { ...r, fields: e.target.checked ? [...(r.fields ?? []), k] : (r.fields ?? []).filter((x) => x !== k) })
                        }
                      />
                      {k}
                    </label>
                  ))}
                </span>
              )}
              <button type="button" className="danger" aria-label={`Remove rule ${n}`} onClick={() => onChange(rules.filter((_, j) => j !== i))}>
                Remove
              </button>
              {error && (
                <p className="field-error" role="alert">
                  {error}
                </p>
              )}
            </li>
          );
        })}
      </ol>
      <button type="button" onClick={() => onChange([...rules, { rule: "less_than", fields: [] }])} disabled={keys.length < 2}>
        Add rule
      </button>
    </fieldset>
  );
}

/** What a person types as the value to compare: JSON when it reads as JSON (numbers, true), else text. */
function parseLoose(text: string): CrossRule["equals"] {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as CrossRule["equals"];
  } catch {
    return text;
  }
}
