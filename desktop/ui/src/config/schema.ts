// The config form's zod schema, derived from the same field definitions the
// Rust validator uses. It catches what a browser can check (type, required,
// range, length, pattern, options, JSON syntax, file extension, simple
// formats) before a round trip; the server still validates everything
// (custom rules, JSON Schema, cross-field rules, files that must exist) and
// its errors are shown beside the same fields.

import { z } from "zod";
import type { ConfigDocument, FieldDef, JsonValue } from "../generated/bindings";

/** What a form field holds: text for every type but boolean. */
export type FormValue = string | boolean;
export type FormValues = Record<string, FormValue>;
/** Values as the server takes them; absent keys fall back to defaults. */
export type ConfigValues = Record<string, JsonValue | undefined>;

/**
 * The form field name of a config key. react-hook-form reads dots and
 * brackets in a name as a path and cannot take an empty one, while a key
 * is being typed can be anything: names are the key's code units in hex.
 */
export function formName(key: string): string {
  let out = "k";
  for (let i = 0; i < key.length; i++) out += key.charCodeAt(i).toString(16).padStart(4, "0");
  return out;
}

/** The config key a form field name stands for. */
export function keyOfName(name: string): string {
  let out = "";
  for (let i = 1; i + 4 <= name.length; i += 4) out += String.fromCharCode(parseInt(name.slice(i, i + 4), 16));
  return out;
}

/** Why a field key cannot be saved (the server's rule, said at once), or null. */
export function keyProblem(key: string, keys: string[]): string | null {
  if (key === "") return "a key is required";
  if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(key)) {
    return "a key starts with a letter or _ and has at most 64 letters, digits, _ or - (no dots or spaces)";
  }
  if (keys.filter((k) => k === key).length > 1) return `the key "${key}" is defined more than once`;
  return null;
}

/** The form's starting values: the stored value, else the default, else empty. */
export function formValuesOf(doc: Pick<ConfigDocument, "fields" | "values">): FormValues {
  const out: FormValues = {};
  for (const f of doc.fields) {
    const stored = doc.values[f.key];
    const v = stored !== undefined && stored !== null ? stored : (f.default ?? null);
    out[formName(f.key)] = toFormValue(f, v);
  }
  return out;
}

export function toFormValue(f: FieldDef, v: JsonValue | null | undefined): FormValue {
  if (f.type === "boolean") return v === true;
  if (v === null || v === undefined) return "";
  if (f.type === "json") return JSON.stringify(v, null, 2);
  return String(v);
}

/** The zod schema of a whole values form. */
export function valuesSchema(fields: FieldDef[]) {
  const shape: Record<string, z.ZodType<JsonValue | undefined, FormValue>> = {};
  for (const f of fields) shape[formName(f.key)] = fieldSchema(f);
  return z.object(shape);
}

/** The zod schema of one field: form text in, typed value (or undefined) out. */
export function fieldSchema(f: FieldDef): z.ZodType<JsonValue | undefined, FormValue> {
  if (f.type === "boolean") {
    return z.boolean() as unknown as z.ZodType<JsonValue | undefined, FormValue>;
  }
  return z.string().transform((raw, ctx): JsonValue | undefined => {
    const fail = (message: string) => {
      ctx.addIssue({ code: "custom", message });
      return z.NEVER;
    };
    const text = raw;
    if (text.trim() === "") {
      if (f.required && (f.default === undefined || f.default === null)) return fail("is required");
      return undefined;
    }
    switch (f.type) {
      case "number":
        return checkNumber(f, text, fail);
      case "json":
        return checkJson(text, fail);
      case "select":
        if (f.options && !f.options.includes(text)) {
          return fail(`"${text}" is not one of: ${f.options.join(", ")}`);
        }
        return text;
      case "file":
        return checkText(f, text, fail, true);
      case "secret":
        // •••• keeps the value the secret has; the app checks a new one.
        return text === "••••" ? text : checkText(f, text, fail, false);
      default:
        return checkText(f, text, fail, false);
    }
  }) as unknown as z.ZodType<JsonValue | undefined, FormValue>;
}

type Fail = (message: string) => never;

function checkNumber(f: FieldDef, text: string, fail: Fail): number {
  const n = Number(text.trim());
  if (!Number.isFinite(n)) return fail(`must be a number, got "${text}"`);
  if (f.integer && !Number.isInteger(n)) return fail(`must be a whole number, got ${n}`);
  const lo = f.min ?? null;
  const hi = f.max ?? null;
  if ((lo !== null && n < lo) || (hi !== null && n > hi)) {
    if (lo !== null && hi !== null) return fail(`must be between ${lo} and ${hi}, got ${n}`);
    if (lo !== null) return fail(`must be at least ${lo}, got ${n}`);
    return fail(`must be at most ${hi}, got ${n}`);
  }
  return n;
}

function checkJson(text: string, fail: Fail): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (e) {
    return fail(`is not valid JSON: ${(e as Error).message}`);
  }
}

function checkText(f: FieldDef, text: string, fail: Fail, isFile: boolean): string {
  const len = [...text].length;
  if (f.min_length != null && len < f.min_length) {
    return fail(`must be at least ${f.min_length} characters, got ${len}`);
  }
  if (f.max_length != null && len > f.max_length) {
    return fail(`must be at most ${f.max_length} characters, got ${len}`);
  }
  if (f.pattern) {
    let re: RegExp | null = null;
    try {
      re = new RegExp(`^(?:${f.pattern})$`);
    } catch {
      re = null; // a pattern JS cannot read is left to the server
    }
    if (re && !re.test(text)) return fail(`must match the pattern ${f.pattern}`);
  }
  if (f.format) {
    const problem = formatProblem(f.format, text);
    if (problem) return fail(problem);
  }
  if (isFile && f.extensions && f.extensions.length > 0) {
    const name = text.split(/[\\/]/).pop() ?? text;
    const ok = f.extensions.some((e) => {
      const ext = e.replace(/^\./, "").toLowerCase();
      return name.length > ext.length + 1 && name.toLowerCase().endsWith(`.${ext}`);
    });
    if (!ok) return fail(`must be a file ending in .${f.extensions.map((e) => e.replace(/^\./, "")).join(", .")}`);
  }
  return text;
}

/** Formats a browser can check cheaply; others are left to the server. */
export function formatProblem(format: string, s: string): string | null {
  switch (format) {
    case "email":
      return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s) ? null : "must be an email address like name@example.org";
    case "url":
      try {
        const u = new URL(s);
        return u.host || u.protocol === "file:" ? null : "must be a URL like https://example.org/path";
      } catch {
        return "must be a URL like https://example.org/path";
      }
    case "uuid":
      return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s) ? null : "must be a UUID like 0190a5c2-7b5e-7cc1-8f3a-2d1e4b6a9c00";
    case "date":
      return /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s)) ? null : "must be a date like 2026-11-26";
    case "ipv4": {
      const parts = s.split(".");
      const ok = parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
      return ok ? null : "must be an IPv4 address like 192.168.1.10";
    }
    case "semver":
      return /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.test(s) ? null : "must be a semantic version like 1.2.3";
    default:
      return null;
  }
}

/** Parsed form output (by form name) as the values map sent to `update_config`. */
export function toConfigValues(parsed: Record<string, JsonValue | undefined>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [name, v] of Object.entries(parsed)) {
    if (v !== undefined) out[keyOfName(name)] = v;
  }
  return out;
}
