import { describe, expect, it } from "vitest";
import type { FieldDef } from "../generated/bindings";
import { threeWay, type ConfigDoc } from "./threeWay";

const text = (key: string, label?: string): FieldDef => ({ key, type: "text", ...(label ? { label } : {}) });
const doc = (fields: FieldDef[], values: ConfigDoc["values"], extra: Partial<ConfigDoc> = {}): ConfigDoc => ({
  fields,
  values,
  rules: [],
  run: null,
  retention: null,
  ...extra,
});

describe("a save refused as a conflict, laid over the latest", () => {
  const base = doc([text("host"), text("port")], { host: "a", port: "1" });

  it("keeps edits of different fields from both sides, with nothing to choose", () => {
    const mine = doc(base.fields, { host: "mine", port: "1" });
    const theirs = doc(base.fields, { host: "a", port: "2" });
    const m = threeWay(base, mine, theirs);
    expect(m.clashes).toEqual([]);
    expect(m.takeTheirs.values).toEqual({ host: "mine", port: "2" });
    expect(m.keepMine.values).toEqual({ host: "mine", port: "2" });
    expect(m.mineKeptBesideTheirs).toBe(true);
  });

  it("a field both changed differently is a clash: Keep mine takes mine, Take theirs theirs", () => {
    const mine = doc([text("host", "Host name"), text("port")], { host: "mine", port: "1" });
    const theirs = doc(base.fields, { host: "theirs", port: "1" });
    const m = threeWay(base, mine, theirs);
    expect(m.clashes).toEqual([{ part: "values.host", label: "Host name", mine: "mine", theirs: "theirs" }]);
    expect(m.keepMine.values.host).toBe("mine");
    expect(m.takeTheirs.values.host).toBe("theirs");
    // The label edit did not clash: both keep it.
    expect(m.takeTheirs.fields[0].label).toBe("Host name");
  });

  it("the same change on both sides is no clash", () => {
    const both = doc(base.fields, { host: "same", port: "1" });
    const m = threeWay(base, both, both);
    expect(m.clashes).toEqual([]);
    expect(m.mineKeptBesideTheirs).toBe(false);
    expect(m.takeTheirs).toEqual(both);
  });

  it("fields added on both sides all survive, in the order they were added", () => {
    const mine = doc([text("first"), ...base.fields, text("mine")], { ...base.values, mine: "m", first: "f" });
    const theirs = doc([...base.fields, text("theirs")], { ...base.values, theirs: "t" });
    const m = threeWay(base, mine, theirs);
    expect(m.clashes).toEqual([]);
    expect(m.takeTheirs.fields.map((f) => f.key)).toEqual(["first", "host", "port", "mine", "theirs"]);
    expect(m.takeTheirs.values).toEqual({ host: "a", port: "1", first: "f", mine: "m", theirs: "t" });
  });

  it("a field removed here is removed with its value; one removed there and edited here is a clash", () => {
    const mine = doc([text("host", "Edited")], { host: "a" });
    const theirs = doc([text("port")], { port: "1" });
    const m = threeWay(base, mine, theirs);
    expect(m.clashes.map((c) => c.part)).toEqual(["fields.host"]);
    expect(m.takeTheirs.fields.map((f) => f.key)).toEqual([]);
    expect(m.takeTheirs.values).toEqual({});
    expect(m.keepMine.fields.map((f) => f.key)).toEqual(["host"]);
    expect(m.keepMine.values).toEqual({ host: "a" });
  });

  it("run settings and rules are each one part", () => {
    const mine = doc(base.fields, base.values, { run: { command: ["mine"] } as ConfigDoc["run"] });
    const theirs = doc(base.fields, base.values, { rules: [{ rule: "required_with", fields: ["host", "port"] }] as ConfigDoc["rules"] });
    const m = threeWay(base, mine, theirs);
    expect(m.clashes).toEqual([]);
    expect(m.takeTheirs.run).toEqual({ command: ["mine"] });
    expect(m.takeTheirs.rules).toHaveLength(1);
  });
});
