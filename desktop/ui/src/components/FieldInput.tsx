import { useState } from "react";
import { useController, type Control, type UseFormRegister } from "react-hook-form";
import type { FieldDef } from "../generated/bindings";
import { formName, type FormValues } from "../config/schema";
import { JsonEditor } from "./JsonEditor";

/** The input for one config field, chosen by its type. */
export function FieldInput(props: {
  field: FieldDef;
  register: UseFormRegister<FormValues>;
  /** For inputs the form does not own (the JSON code editor). */
  control: Control<FormValues>;
  invalid: boolean;
  describedBy: string;
  onBrowse?: () => void;
  /** For a secret: its value in clear, asked of the app (null: not available here). */
  onReveal?: () => Promise<string | null>;
}) {
  const { field: f, register, invalid, describedBy } = props;
  const common = {
    id: `value-${f.key}`,
    "aria-invalid": invalid,
    "aria-describedby": describedBy,
    "aria-required": f.required ? true : undefined,
  };
  switch (f.type) {
    case "boolean":
      return <input type="checkbox" {...common} {...register(formName(f.key))} />;
    case "number":
      return (
        <input
          type="text"
          inputMode="decimal"
          {...common}
          placeholder={rangeHint(f)}
          {...register(formName(f.key))}
        />
      );
    case "select":
      return (
        <select {...common} {...register(formName(f.key))}>
          <option value="">{f.required ? "— choose —" : "— none —"}</option>
          {(f.options ?? []).map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      );
    case "json":
      return <JsonField field={f} control={props.control} invalid={invalid} describedBy={describedBy} />;
    case "secret":
      return <SecretField field={f} control={props.control} common={common} onReveal={props.onReveal} />;
    case "file":
      return (
        <span className="file-input">
          <input
            type="text"
            {...common}
            placeholder={f.extensions?.length ? `path ending in .${f.extensions.join(", .")}` : "path to a file"}
            {...register(formName(f.key))}
          />
          {props.onBrowse && (
            <button type="button" onClick={props.onBrowse} aria-label={`Choose a file for ${f.label ?? f.key}`}>
              Browse…
            </button>
          )}
        </span>
      );
    default:
      return <input type="text" {...common} placeholder={f.format ?? undefined} {...register(formName(f.key))} />;
  }
}

/** A JSON value: the code editor, wired to the form like an input. */
function JsonField(props: { field: FieldDef; control: Control<FormValues>; invalid: boolean; describedBy: string }) {
  const { field } = useController({ name: formName(props.field.key), control: props.control });
  return (
    <JsonEditor
      id={`value-${props.field.key}`}
      value={typeof field.value === "string" ? field.value : ""}
      onChange={field.onChange}
      onBlur={field.onBlur}
      invalid={props.invalid}
      describedBy={props.describedBy}
      required={props.field.required ?? false}
    />
  );
}

function rangeHint(f: FieldDef): string | undefined {
  if (f.min != null && f.max != null) return `${f.min} – ${f.max}`;
  if (f.min != null) return `≥ ${f.min}`;
  if (f.max != null) return `≤ ${f.max}`;
  return undefined;
}

/** A secret: shown as •••• (which, saved, keeps the value it has); typing
 * replaces it; Reveal asks the app for the value in clear. */
function SecretField(props: {
  field: FieldDef;
  control: Control<FormValues>;
  common: Record<string, unknown>;
  onReveal?: () => Promise<string | null>;
}) {
  const { field } = useController({ name: formName(props.field.key), control: props.control });
  const [shown, setShown] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  const name = props.field.label ?? props.field.key;
  return (
    <span className="secret-input">
      <input
        type={shown ? "text" : "password"}
        autoComplete="new-password"
        {...props.common}
        value={typeof field.value === "string" ? field.value : ""}
        onChange={field.onChange}
        onBlur={field.onBlur}
      />
      {props.onReveal && !shown && (
        <button
          type="button"
          aria-label={`Reveal ${name}`}
          onClick={async () => {
            const clear = await props.onReveal?.();
            if (clear == null) {
              setNote("secret not available on this device");
              return;
            }
            if (field.value === "••••") field.onChange(clear);
            setShown(true);
            setNote(null);
          }}
        >
          Reveal
        </button>
      )}
      {note && <span className="muted"> {note}</span>}
    </span>
  );
}
