// A save refused as a conflict: the configuration changed elsewhere since it
// was loaded. Instead of dropping the edits made here, they are laid over
// the latest version: what only one side changed is kept from that side, and
// what both changed is a choice the person makes (Keep mine / Take theirs).

import type { CrossRule, FieldDef, JsonValue, RetentionPolicy, RunSpec } from "../generated/bindings";

/** The parts of a configuration document the editor saves together. */
export interface ConfigDoc {
  fields: FieldDef[];
  values: Record<string, JsonValue>;
  rules: CrossRule[];
  run?: RunSpec | null;
  retention?: RetentionPolicy | null;
}

/** A part changed here and elsewhere, to different results. */
export interface Clash {
  /** `values.<key>`, `fields.<key>`, `rules`, `run` or `retention`. */
  part: string;
  /** Shown to the person: the field's label or the section's name. */
  label: string;
  mine: JsonValue | undefined;
  theirs: JsonValue | undefined;
}

export interface ThreeWay {
  /** Parts both sides changed differently. */
  clashes: Clash[];
  /** The latest with every edit made here ("Keep mine"). */
  keepMine: ConfigDoc;
  /** The latest with the edits made here that do not clash ("Take theirs"). */
  takeTheirs: ConfigDoc;
  /** Whether anything made here survives in `takeTheirs`. */
  mineKeptBesideTheirs: boolean;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** `base`: what was loaded; `mine`: what this form would save; `theirs`: the latest. */
export function threeWay(base: ConfigDoc, mine: ConfigDoc, theirs: ConfigDoc): ThreeWay {
  const clashes: Clash[] = [];
  const keepMine = clone(theirs);
  const takeTheirs = clone(theirs);
  let mineKept = false;

  // One part: taken from mine where only mine changed it; on a clash,
  // `keepMine` takes mine and `takeTheirs` keeps theirs.
  const part = <T>(
    name: string,
    label: string,
    b: T | undefined,
    m: T | undefined,
    t: T | undefined,
    set: (doc: ConfigDoc, v: T | undefined) => void,
  ) => {
    if (same(b, m) || same(m, t)) return;
    set(keepMine, m);
    if (same(b, t)) {
      set(takeTheirs, m);
      mineKept = true;
    } else {
      clashes.push({ part: name, label, mine: m as JsonValue | undefined, theirs: t as JsonValue | undefined });
    }
  };

  const defs = (d: ConfigDoc) => new Map(d.fields.map((f) => [f.key, f]));
  const [bDefs, mDefs, tDefs] = [defs(base), defs(mine), defs(theirs)];
  const labelOf = (key: string) => mDefs.get(key)?.label || tDefs.get(key)?.label || key;
  const keys = unique([...mine.fields.map((f) => f.key), ...theirs.fields.map((f) => f.key), ...base.fields.map((f) => f.key)]);
  for (const key of keys) {
    part(`fields.${key}`, `the definition of ${labelOf(key)}`, bDefs.get(key), mDefs.get(key), tDefs.get(key), (doc, v) =>
      setDefinition(doc, key, v, mine),
    );
  }
  const valueKeys = unique([...Object.keys(mine.values), ...Object.keys(theirs.values), ...Object.keys(base.values)]);
  for (const key of valueKeys) {
    part(`values.${key}`, labelOf(key), base.values[key], mine.values[key], theirs.values[key], (doc, v) => {
      if (v === undefined) delete doc.values[key];
      else doc.values[key] = v;
    });
  }
  part("rules", "the cross-field rules", base.rules, mine.rules, theirs.rules, (doc, v) => {
    doc.rules = v ?? [];
  });
  part("run", "the run settings", base.run, mine.run, theirs.run, (doc, v) => {
    doc.run = v ?? null;
  });
  part("retention", "the retention policy", base.retention, mine.retention, theirs.retention, (doc, v) => {
    doc.retention = v ?? null;
  });
  // A definition kept from mine over theirs' removal keeps its value too.
  for (const key of keepMine.fields.map((f) => f.key)) {
    if (keepMine.values[key] === undefined && mine.values[key] !== undefined) keepMine.values[key] = mine.values[key];
  }
  // A value without a definition is not saved.
  for (const doc of [keepMine, takeTheirs]) {
    const defined = new Set(doc.fields.map((f) => f.key));
    for (const key of Object.keys(doc.values)) if (!defined.has(key)) delete doc.values[key];
  }
  return { clashes, keepMine, takeTheirs, mineKeptBesideTheirs: mineKept };
}

/** Puts `def` (or removes it when undefined) in place: where it is, or
 * where `mine` has it among the fields both know, or last. */
function setDefinition(doc: ConfigDoc, key: string, def: FieldDef | undefined, mine: ConfigDoc) {
  const at = doc.fields.findIndex((f) => f.key === key);
  if (def === undefined) {
    if (at >= 0) doc.fields.splice(at, 1);
    return;
  }
  if (at >= 0) {
    doc.fields[at] = def;
    return;
  }
  const mineAt = mine.fields.findIndex((f) => f.key === key);
  const before = mine.fields.slice(0, mineAt).map((f) => f.key);
  let insertAt = before.length === 0 ? 0 : doc.fields.length;
  for (let i = before.length - 1; i >= 0; i--) {
    const j = doc.fields.findIndex((f) => f.key === before[i]);
    if (j >= 0) {
      insertAt = j + 1;
      break;
    }
  }
  doc.fields.splice(insertAt, 0, def);
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function clone(d: ConfigDoc): ConfigDoc {
  return JSON.parse(JSON.stringify(d)) as ConfigDoc;
}
