import { describe, expect, it } from "vitest";
import type { RunSpec } from "../generated/bindings";
import { parseRunDraft, runDraftOf } from "./RunSettings";

describe("the run form", () => {
  it("keeps every part of a run spec it shows, the schedule and inherit_env included", () => {
    const run: RunSpec = {
      command: ["sh", "job.sh"],
      timeout_s: 30,
      inherit_env: ["AWS_PROFILE"],
      schedule: {
        cron: "0 3 * * *",
        timezone: "Europe/Berlin",
        missed: "run_once",
        catch_up: "2h",
        overlap: "queue",
        jitter: "30s",
        owner: "device-a",
      },
    };
    const parsed = parseRunDraft(runDraftOf(run, null));
    expect(parsed.errors).toEqual({});
    expect(parsed.value.run).toEqual(run);
  });

  it("writes an interval schedule without the defaults", () => {
    const d = runDraftOf({ command: ["true"] }, null);
    d.schedule = { ...d.schedule, kind: "interval", interval: "15m" };
    expect(parseRunDraft(d).value.run?.schedule).toEqual({ interval: "15m" });
  });

  it("names what is missing by field", () => {
    const d = runDraftOf({ command: ["true"] }, null);
    d.schedule = { ...d.schedule, kind: "cron" };
    expect(parseRunDraft(d).errors).toEqual({ "schedule.cron": "is required, like 0 3 * * *" });
    const noCommand = runDraftOf(null, null);
    noCommand.schedule = { ...noCommand.schedule, kind: "interval", interval: "1h" };
    expect(Object.keys(parseRunDraft(noCommand).errors)).toEqual(["command"]);
  });
});
