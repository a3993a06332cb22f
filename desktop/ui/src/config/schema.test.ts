import { describe, expect, it } from "vitest";
import type { FieldDef } from "../generated/bindings";
import { fieldSchema, formName, formValuesOf, keyOfName, keyProblem, toConfigValues, valuesSchema } from "./schema";

const issues = (f: FieldDef, v: string | boolean) => {
  const r = fieldSchema(f).safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => i.message);
};
const value = (f: FieldDef, v: string | boolean) => {
  const r = fieldSchema(f).safeParse(v);
  if (!r.success) throw new Error(r.error.issues.map((i) => i.message).join("; "));
  return r.data;
};

describe("config document → zod schema", () => {
  it("numbers: typed, ranges and whole numbers with the server's messages", () => {
    const f: FieldDef = { key: "retries", type: "number", min: 0, max: 5, integer: true };
    expect(value(f, "3")).toBe(3);
    expect(value(f, " 0 ")).toBe(0);
    expect(issues(f, "9")).toEqual(["must be between 0 and 5, got 9"]);
    expect(issues(f, "-1")).toEqual(["must be between 0 and 5, got -1"]);
    expect(issues(f, "2.5")).toEqual(["must be a whole number, got 2.5"]);
    expect(issues(f, "three")).toEqual(['must be a number, got "three"']);
    expect(issues({ key: "n", type: "number", min: 1 }, "0")).toEqual(["must be at least 1, got 0"]);
    expect(issues({ key: "n", type: "number", max: 1 }, "2")).toEqual(["must be at most 1, got 2"]);
    expect(value({ key: "n", type: "number" }, "1e3")).toBe(1000);
  });

  it("required: empty is an error unless a default fills it; optional empty is absent", () => {
    expect(issues({ key: "a", type: "text", required: true }, "")).toEqual(["is required"]);
    expect(issues({ key: "a", type: "text", required: true }, "   ")).toEqual(["is required"]);
    expect(value({ key: "a", type: "text", required: true, default: "x" }, "")).toBeUndefined();
    expect(value({ key: "a", type: "number" }, "")).toBeUndefined();
  });

  it("text: length, pattern and formats", () => {
    const f: FieldDef = { key: "t", type: "text", min_length: 2, max_length: 4, pattern: "[a-z]+" };
    expect(value(f, "abc")).toBe("abc");
    expect(issues(f, "a")).toEqual(["must be at least 2 characters, got 1"]);
    expect(issues(f, "abcde")).toEqual(["must be at most 4 characters, got 5"]);
    expect(issues(f, "AB")).toEqual(["must match the pattern [a-z]+"]);
    // The whole value must match, as on the server.
    expect(issues(f, "ab1")).toEqual(["must match the pattern [a-z]+"]);
    const email: FieldDef = { key: "e", type: "text", format: "email" };
    expect(value(email, "ops@example.org")).toBe("ops@example.org");
    expect(issues(email, "ops at example.org")).toEqual(["must be an email address like name@example.org"]);
    expect(issues({ key: "u", type: "text", format: "url" }, "not a url")).toEqual([
      "must be a URL like https://example.org/path",
    ]);
    expect(issues({ key: "d", type: "text", format: "date" }, "2026-13-45")).toEqual(["must be a date like 2026-11-26"]);
    expect(issues({ key: "v", type: "text", format: "semver" }, "1.2")).toEqual(["must be a semantic version like 1.2.3"]);
    // Formats the browser does not check are left to the server.
    expect(value({ key: "h", type: "text", format: "hostname" }, "!!")).toBe("!!");
  });

  it("select: only its options", () => {
    const f: FieldDef = { key: "m", type: "select", options: ["fast", "safe"] };
    expect(value(f, "safe")).toBe("safe");
    expect(issues(f, "slow")).toEqual(['"slow" is not one of: fast, safe']);
  });

  it("json: parsed, syntax errors reported", () => {
    const f: FieldDef = { key: "j", type: "json" };
    expect(value(f, '{"a": [1, 2]}')).toEqual({ a: [1, 2] });
    expect(value(f, "null")).toBeNull();
    const [message] = issues(f, "{bad");
    expect(message).toMatch(/^is not valid JSON: /);
  });

  it("file: extension checked on the name, case-insensitively", () => {
    const f: FieldDef = { key: "f", type: "file", extensions: ["csv", ".tsv"] };
    expect(value(f, "/data/in.CSV")).toBe("/data/in.CSV");
    expect(value(f, "C:\\data\\in.tsv")).toBe("C:\\data\\in.tsv");
    expect(issues(f, "/data/in.txt")).toEqual(["must be a file ending in .csv, .tsv"]);
    expect(issues(f, "/data/.csv")).toEqual(["must be a file ending in .csv, .tsv"]);
  });

  it("boolean: a checkbox's value", () => {
    const f: FieldDef = { key: "b", type: "boolean" };
    expect(value(f, true)).toBe(true);
    expect(value(f, false)).toBe(false);
    expect(issues(f, "on").length).toBe(1);
  });

  it("a whole form: every problem at once, values typed for the server", () => {
    const fields: FieldDef[] = [
      { key: "retries", type: "number", max: 5 },
      { key: "mode", type: "select", options: ["a"], required: true },
      { key: "payload", type: "json" },
      { key: "on", type: "boolean" },
      { key: "note", type: "text" },
    ];
    const byName = (o: Record<string, string | boolean>) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [formName(k), v]));
    const bad = valuesSchema(fields).safeParse(byName({ retries: "9", mode: "", payload: "{", on: false, note: "" }));
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => keyOfName(i.path.join(".")));
    expect(paths.sort()).toEqual(["mode", "payload", "retries"]);

    const ok = valuesSchema(fields).parse(byName({ retries: "2", mode: "a", payload: "[1]", on: true, note: "" }));
    expect(toConfigValues(ok)).toEqual({ retries: 2, mode: "a", payload: [1], on: true });
  });

  it("form values start from stored values, then defaults", () => {
    const fields: FieldDef[] = [
      { key: "n", type: "number", default: 3 },
      { key: "j", type: "json" },
      { key: "b", type: "boolean", default: true },
      { key: "t", type: "text" },
    ];
    expect(formValuesOf({ fields, values: { j: { a: 1 }, t: "x" } })).toEqual({
      [formName("n")]: "3",
      [formName("j")]: '{\n  "a": 1\n}',
      [formName("b")]: true,
      [formName("t")]: "x",
    });
  });

  it("form names take any key a person may type, and give it back", () => {
    for (const key of ["retries", "db.host", "", "a[0]", "ключ", "x y"]) {
      const name = formName(key);
      expect(name).toMatch(/^k[0-9a-f]*$/);
      expect(keyOfName(name)).toBe(key);
    }
  });

  it("a key the server would refuse is said at once, with the rule", () => {
    expect(keyProblem("db_host", ["db_host"])).toBeNull();
    expect(keyProblem("", [""])).toBe("a key is required");
    expect(keyProblem("db.host", ["db.host"])).toMatch(/no dots/);
    expect(keyProblem("1x", ["1x"])).toMatch(/starts with a letter/);
    expect(keyProblem("a", ["a", "a"])).toBe('the key "a" is defined more than once');
  });
});
