// Generated from the Rust command table by
//   FLOWKEEP_UPDATE_BINDINGS=1 cargo test -p flowkeep-store --lib bindings
// Do not edit: CI fails when this file and the Rust types disagree.

export type ApplyRetention = { workflow_id?: string, };

export type Approval = { 
/**
 * `true` when the run spec and retention in effect are what this
 * device approved (or wrote itself).
 */
approved: boolean, 
/**
 * What this device approved last; differs from the workflow's own
 * `config.run` / `config.retention` exactly when `approved` is false.
 */
approved_spec: TrustedSpec, };

export type ApproveWorkflow = { id: string, expected_revision?: number, };

export type ConfigDocument = { fields: Array<FieldDef>, rules?: Array<CrossRule>, values: { [key in string]?: JsonValue }, run?: RunSpec | null, 
/**
 * This workflow's own retention; the global policy applies otherwise.
 */
retention?: RetentionPolicy | null, };

export type ConfigOut = { workflow_id: string, revision: number, fields: Array<FieldDef>, rules?: Array<CrossRule>, values: { [key in string]?: JsonValue }, run?: RunSpec | null, 
/**
 * This workflow's own retention; the global policy applies otherwise.
 */
retention?: RetentionPolicy | null, };

export type ConfigType = "text" | "number" | "boolean" | "select" | "json" | "file" | "secret";

export type CountWorkflows = { search?: string, tag?: string, };

export type CreateWorkflow = { name: string, description?: string, version?: string, tags?: Array<string>, 
/**
 * The config document; `{"fields": [], "values": {}}` when absent.
 */
config?: JsonValue, };

export type CrossRule = { rule: string, fields?: Array<string>, field?: string | null, if_field?: string | null, equals?: JsonValue | null, };

export type DeleteWorkflow = { id: string, expected_revision?: number, };

export type Deleted = { id: string, deleted: boolean, };

export type DiffWorkflow = { id: string, from: string, to?: string, };

export type DuplicateWorkflow = { id: string, 
/**
 * Name of the copy; "<name> (copy)" when absent.
 */
name?: string, };

export type ErrorBody = { code: ErrorCode, message: string, fields: Array<FieldError>, };

export type ErrorCode = "validation_failed" | "not_found" | "conflict" | "invalid_input" | "not_approved" | "internal";

export type ExportFormat = "json" | "ndjson" | "csv";

export type ExportWorkflows = { dir: string, 
/**
 * Only workflows whose name or description contains this.
 */
search?: string, 
/**
 * Only workflows with this tag.
 */
tag?: string, 
/**
 * Only these workflows.
 */
ids?: Array<string>, };

export type ExportedFile = { workflow_id: string, file: string, };

export type ExportedWorkflows = { dir: string, 
/**
 * One per workflow, in the order written.
 */
files: Array<ExportedFile>, };

export type FieldChange = { field: string, old: JsonValue, new: JsonValue, };

export type FieldConflict = { field: string, values: Array<JsonValue>, };

export type FieldDef = { key: string, type: ConfigType, label?: string | null, description?: string | null, required?: boolean, default?: JsonValue | null, min?: number | null, max?: number | null, integer?: boolean, min_length?: number | null, max_length?: number | null, format?: string | null, pattern?: string | null, options?: Array<string> | null, schema?: JsonValue | null, extensions?: Array<string> | null, must_exist?: boolean, 
/**
 * A named custom rule registered in Rust (`cron`, `port`, `duration`, `semver`).
 */
rule?: string | null, };

export type FieldError = { 
/**
 * Path of the offending field, e.g. `values.retries` or `fields.mode.options`.
 */
field: string, 
/**
 * The rule that failed, e.g. `required`, `range`, `format`.
 */
code: string, message: string, };

export type FinishRun = { id: string, status: RunStatus, exit_code?: number, output?: JsonValue, error?: string, };

export type GetConfig = { workflow_id: string, };

export type GetRunOutput = { id: string, 
/**
 * Where to start (bytes into the log; 0 when left out).
 */
from?: number, 
/**
 * At most this many bytes (64 KiB when left out).
 */
limit?: number, };

export type GetSettings = Record<string, never>;

export type GetSyncStatus = Record<string, never>;

export type HistoryEntry = { seq: number, event_id: string, kind: string, revision: number, actor: string, 
/**
 * The device that made the change; for a change from another device,
 * the one its message claims.
 */
device_id: string, 
/**
 * For a change from another device: the device the sync server
 * authenticated when it received it, when the server said. The same
 * as `device_id` unless the change was relayed or its claim is false.
 */
uploaded_by: string | null, origin: string, recorded_at: number, changes: Array<FieldChange>, 
/**
 * For merges: fields edited concurrently elsewhere, every value (the
 * one in effect first), so both edits show even where one lost.
 */
conflicts?: Array<FieldConflict>, };

export type ImportAction = "create" | "update" | "unchanged" | "conflict";

export type ImportItem = { file: string, workflow_id: string, name: string, action: ImportAction, 
/**
 * What the import writes (or would), field by field: old → new.
 */
changes: Array<FieldChange>, conflicts: Array<MergeConflict>, };

export type ImportReport = { imported: number, };

export type ImportRuns = { 
/**
 * `executions` is read too: the name before runs were called runs.
 */
runs: Array<ImportedRun>, };

export type ImportWorkflows = { dir?: string, files?: Array<string>, match?: MatchBy, 
/**
 * Who wins a field changed both in the file and here since the last
 * export or import; without it such a field stops that workflow.
 */
prefer?: Prefer, 
/**
 * Only say what would happen.
 */
dry_run?: boolean, };

export type ImportedRun = { workflow_id: string, status: RunStatus, started_at: number, completed_at: number, exit_code?: number, output?: JsonValue, error?: string, trigger?: string, };

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;

export type LastRun = { status: RunStatus, started_at: number, };

export type ListRuns = { limit?: number, cursor?: string, workflow_id?: string, status?: RunStatus, 
/**
 * Started at or after (Unix ms).
 */
since?: number, 
/**
 * Started before (Unix ms).
 */
until?: number, };

export type ListSchedules = { 
/**
 * Only this workflow's.
 */
workflow_id?: string, };

export type ListTags = { 
/**
 * Only tags that start with this.
 */
prefix?: string, limit?: number, };

export type ListWorkflows = { 
/**
 * Matches name or description, case-insensitively.
 */
search?: string, tag?: string, sort?: WorkflowSort, desc?: boolean, limit?: number, 
/**
 * `next_cursor` of the previous page.
 */
cursor?: string, 
/**
 * List deleted workflows instead of live ones (to undelete one).
 */
deleted?: boolean, };

export type MatchBy = "id" | "name";

export type MergeConflict = { 
/**
 * `config.values.greeting`, `name`, `config.run`, ...
 */
field: string, base: unknown, 
/**
 * The value the workflow has here.
 */
local: unknown, 
/**
 * The value the file has.
 */
file: unknown, };

export type Missed = "skip" | "run_once" | "run_all";

export type Overlap = "skip" | "queue" | "cancel_previous" | "allow";

export type OwnSchedule = { workflow_id: string, device_id?: string, expected_revision?: number, };

export type Page<T> = { items: Array<T>, 
/**
 * Pass back as `cursor` for the next page; `null` on the last page.
 */
next_cursor: string | null, };

export type Prefer = "file" | "local";

export type PreviewSchedule = { schedule: unknown, count?: number, 
/**
 * From 1970 to the end of year 9999.
 */
from?: number, };

export type PruneReport = { deleted: number, };

export type RestoreWorkflow = { id: string, to: string, expected_revision?: number, };

export type RetentionPolicy = { max_age?: string | null, max_count?: number | null, };

export type RevealConfig = { workflow_id: string, };

export type RevealedConfig = { workflow_id: string, revision: number, values: Record<string, unknown>, 
/**
 * Secrets this device cannot open (their value is null above), and why.
 */
unavailable: Array<FieldError>, };

export type RotateSecrets = Record<string, never>;

export type Run = { id: string, workflow_id: string, status: RunStatus, 
/**
 * Free-form JSON the run produced (result, output tails, ...).
 */
output: JsonValue | null, started_at: number, completed_at: number | null, duration_ms: number | null, exit_code: number | null, error: string | null, 
/**
 * What started it: `cli`, `manual`, `api`, `schedule`, ...
 */
trigger: string, 
/**
 * The device that recorded the run.
 */
device_id: string, 
/**
 * The workflow's revision the run started from (unknown for runs
 * recorded before runs kept it).
 */
workflow_revision: number | null, 
/**
 * `config_hash` of the effective config it ran with.
 */
config_hash: string | null, 
/**
 * For a run started by a schedule (or an occurrence it skipped): the
 * instant it was scheduled for (Unix ms).
 */
occurrence?: number, };

export type RunCancelled = { id: string, };

export type RunCount = { count: number, };

export type RunFilter = { workflow_id?: string, status?: RunStatus, 
/**
 * Started at or after (Unix ms).
 */
since?: number, 
/**
 * Started before (Unix ms).
 */
until?: number, };

export type RunId = { id: string, };

export type RunOutput = { 
/**
 * The text read (invalid UTF-8 replaced; a character split by the end
 * of the piece is left for the next one).
 */
text: string, 
/**
 * Where `text` starts: `from`, or earlier when the log was cut.
 */
from: number, 
/**
 * Where the next piece starts.
 */
next: number, 
/**
 * The log's size when read.
 */
size: number, 
/**
 * The output grew past what the log keeps: its middle was cut, and the
 * log goes on from `from` (the rest of it comes when the run ends).
 */
cut: boolean, 
/**
 * The run has ended and nothing follows `next`.
 */
finished: boolean, };

export type RunSpec = { command: Array<string>, cwd?: string | null, env?: { [key in string]?: string }, timeout_s?: number | null, 
/**
 * Names of flowkeep's own environment variables passed to the job (when
 * set). Everything else of flowkeep's environment is withheld, apart
 * from a small fixed base (`PATH`, `HOME`, locale, ...).
 */
inherit_env?: Array<string>, 
/**
 * When it runs on its own (`flowkeep agent`); part of the run spec, so
 * a schedule from another device waits for approval here like a command.
 */
schedule?: Schedule | null, };

export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled" | "skipped";

export type RunWorkflow = { workflow_id: string, 
/**
 * Config values for this run only, as text (converted to each field's type).
 */
set?: { [key in string]?: string }, };

export type Schedule = { 
/**
 * A cron expression (5 fields, or 6 with seconds first), read in
 * `timezone`.
 */
cron?: string | null, 
/**
 * IANA time zone of `cron` (`Europe/Berlin`); UTC when absent.
 */
timezone?: string | null, 
/**
 * A fixed period written like the `duration` rule (`2s`, `15m`, `1h30m`);
 * occurrences fall on multiples of it since the Unix epoch, so every
 * device and every restart agrees on them.
 */
interval?: string | null, 
/**
 * What happens to occurrences that passed while no agent ran.
 */
missed?: Missed, 
/**
 * How far back `run_once` / `run_all` catch up (a duration; default 1d).
 * Older missed occurrences are recorded as skipped.
 */
catch_up?: string | null, 
/**
 * What happens when an occurrence comes while the previous run is going.
 */
overlap?: Overlap, 
/**
 * Spread starts by up to this long after the occurrence (a duration),
 * the same on every device for a given occurrence.
 */
jitter?: string | null, 
/**
 * A paused schedule records nothing; when it is resumed it starts from
 * that moment (the paused time is not "missed").
 */
paused?: boolean, 
/**
 * The device that runs it. Filled in with the device that sets a
 * schedule without one; changed with `flowkeep schedule own`.
 */
owner?: string | null, };

export type SchedulePreview = { 
/**
 * Occurrences as Unix ms, in order.
 */
times: Array<number>, 
/**
 * `every 2s`, `cron 0 3 * * * (Europe/Berlin)`.
 */
describe: string, };

export type ScheduleRow = { workflow_id: string, name: string, schedule: Schedule, 
/**
 * `every 2s`, `cron 0 3 * * * (Europe/Berlin)`.
 */
describe: string, 
/**
 * The device that runs it (`None`: no device; nobody runs it).
 */
owner: string | null, 
/**
 * Whether that is this device.
 */
owned_here: boolean, 
/**
 * `runs here`, `paused`, `waiting for approval`, `runs on <device>`,
 * `no owner`: what happens to it on this device.
 */
state: string, 
/**
 * When the next occurrence falls (Unix ms).
 */
next_run: number | null, 
/**
 * The latest recorded occurrence (run or skipped) and how it ended.
 */
last_run: ScheduledRun | null, missed: Missed, overlap: Overlap, 
/**
 * Since when the schedule is in effect as it is (Unix ms).
 */
since: number, };

export type ScheduledRun = { run_id: string, occurrence: number, status: RunStatus, };

export type SecretKey = { key?: string, key_id?: string, 
/**
 * Where this device keeps its keys: "the OS keychain" or a file.
 */
kept_in?: string, };

export type SecretsRotated = { key_id: string, previous_key_id: string | null, workflows: number, values: number, };

export type SetConfigValue = { workflow_id: string, key: string, value: JsonValue, expected_revision?: number, };

export type SetRetention = { workflow_id?: string, policy?: RetentionPolicy, };

export type Settings = { 
/**
 * Applies to every workflow without a policy of its own.
 */
retention: RetentionPolicy, };

export type StartRun = { workflow_id: string, 
/**
 * `running` (default) or `queued`.
 */
status?: RunStatus, trigger?: string, };

export type SyncError = { 
/**
 * Unix ms.
 */
at: number, message: string, };

export type SyncRejection = { 
/**
 * When this device rejected it (Unix ms).
 */
at: number, 
/**
 * `workflow`, `root` or `run`.
 */
what: string, 
/**
 * The document it came in (or the execution-log key).
 */
document: string, 
/**
 * The workflow or run id it claimed, when there was a usable one.
 */
subject: string | null, 
/**
 * The device that wrote it, as far as it can be told.
 */
device_id: string | null, reason: string, };

export type SyncStatus = { configured: boolean, 
/**
 * This device's id, as the server's device list shows it.
 */
device_id: string, server: string | null, join: string | null, last_sync: number | null, 
/**
 * Local changes to workflows since the last sync (0 when this device
 * does not sync).
 */
pending_local_changes: number, 
/**
 * First 8 hex digits of the SHA-256 of this device's credential (or of
 * the workspace token before it enrolled): tells them apart without
 * showing one.
 */
token_fingerprint: string | null, 
/**
 * Data from other devices that failed the checks and was not merged.
 */
rejected: number, 
/**
 * The latest rejections, newest first.
 */
rejections: Array<SyncRejection>, 
/**
 * Why the last sync failed (server unreachable, this device revoked,
 * an untrusted certificate, this device's disk), until one succeeds;
 * or which documents a sync went on without (`SyncReport::passed_over`),
 * until one leaves none out.
 */
last_error: SyncError | null, 
/**
 * What the server said when this device last connected, if the
 * workspace is at one of its limits (documents or stored bytes): what
 * it no longer takes. Syncing goes on for the rest. Also why the server
 * closed the connection, when it could not store the workspace's
 * changes.
 */
server_limit: string | null, 
/**
 * Documents the server had not confirmed when the last sync ended (a
 * limit, a busy server, a dropped connection): kept here and sent
 * again by the next sync. Local changes counted in
 * `pending_local_changes` are not among them.
 */
unconfirmed: number, };

export type TagCount = { tag: string, workflows: number, };

export type TrustedSpec = { run: RunSpec | null, retention: RetentionPolicy | null, };

export type UndeleteWorkflow = { id: string, expected_revision?: number, };

export type UpdateConfig = { workflow_id: string, config: JsonValue, expected_revision?: number, };

export type UpdateWorkflow = { id: string, 
/**
 * Fail with a conflict unless the workflow is still at this revision.
 */
expected_revision?: number, name?: string, description?: string, version?: string, tags?: Array<string>, config?: JsonValue, };

export type ValidateConfig = { workflow_id: string, config?: JsonValue, };

export type ValidationReport = { valid: boolean, errors: Array<FieldError>, };

export type VersionRef = { revision: number, recorded_at: number, };

export type Workflow = { id: string, created_at: number, updated_at: number, 
/**
 * The stream version of the workflow's last event; pass it back as
 * `expected_revision` to make an update fail if someone else wrote first.
 */
revision: number, 
/**
 * Fields edited concurrently on several devices (after sync).
 */
conflicts?: Array<FieldConflict>, 
/**
 * Set when a merge produced a config that breaks its rules.
 */
validation_errors?: Array<FieldError>, 
/**
 * Whether this device approved the run spec and retention policy in
 * effect, and what it approved last. Local to the device, never synced.
 */
approval: Approval, name: string, description: string, version: string, tags: Array<string>, config: ConfigDocument, };

export type WorkflowAt = { id: string, at: string, };

export type WorkflowCount = { count: number, };

export type WorkflowDiff = { id: string, from: VersionRef, to: VersionRef, 
/**
 * Field by field, old (at `from`) → new (at `to`).
 */
changes: Array<FieldChange>, };

export type WorkflowHistory = { workflow_id: string, };

export type WorkflowId = { id: string, };

export type WorkflowImport = { items: Array<ImportItem>, 
/**
 * False for a dry run.
 */
applied: boolean, 
/**
 * Of the created, those whose file has no `id` (matched by id):
 * importing such a file again creates another workflow.
 */
created_without_id: number, };

export type WorkflowName = { id: string, name: string | null, };

export type WorkflowNamesInput = { ids: Array<string>, };

export type WorkflowSort = "name" | "created" | "updated";

export type WorkflowSummary = { id: string, name: string, description: string, version: string, tags: Array<string>, created_at: number, updated_at: number, revision: number, 
/**
 * Whether this device approved the run spec and retention in effect.
 */
approved: boolean, 
/**
 * Its newest run, if it ever ran (on any device).
 */
last_run: LastRun | null, };

export type WorkflowVersion = { id: string, 
/**
 * The revision this version is (the stream version of its last event).
 */
revision: number, created_at: number, 
/**
 * When its last event was recorded.
 */
updated_at: number, 
/**
 * Deleted at this revision.
 */
deleted: boolean, conflicts?: Array<FieldConflict>, name: string, description: string, version: string, tags: Array<string>, config: ConfigDocument, };

/** Every command: its input and output. */
export type Commands = {
  create_workflow: { input: CreateWorkflow; output: Workflow };
  update_workflow: { input: UpdateWorkflow; output: Workflow };
  delete_workflow: { input: DeleteWorkflow; output: Deleted };
  get_workflow: { input: WorkflowId; output: Workflow };
  list_workflows: { input: ListWorkflows; output: Page<WorkflowSummary> };
  list_tags: { input: ListTags; output: Array<TagCount> };
  workflow_names: { input: WorkflowNamesInput; output: Array<WorkflowName> };
  count_workflows: { input: CountWorkflows; output: WorkflowCount };
  duplicate_workflow: { input: DuplicateWorkflow; output: Workflow };
  approve_workflow: { input: ApproveWorkflow; output: Workflow };
  get_config: { input: GetConfig; output: ConfigOut };
  update_config: { input: UpdateConfig; output: ConfigOut };
  set_config_value: { input: SetConfigValue; output: ConfigOut };
  validate_config: { input: ValidateConfig; output: ValidationReport };
  list_runs: { input: ListRuns; output: Page<Run> };
  count_runs: { input: RunFilter; output: RunCount };
  get_run: { input: RunId; output: Run };
  delete_run: { input: RunId; output: Deleted };
  get_run_output: { input: GetRunOutput; output: RunOutput };
  start_run: { input: StartRun; output: Run };
  finish_run: { input: FinishRun; output: Run };
  import_runs: { input: ImportRuns; output: ImportReport };
  prune_runs: { input: RunFilter; output: PruneReport };
  get_settings: { input: GetSettings; output: Settings };
  set_retention: { input: SetRetention; output: Settings };
  apply_retention: { input: ApplyRetention; output: PruneReport };
  workflow_history: { input: WorkflowHistory; output: Array<HistoryEntry> };
  workflow_at: { input: WorkflowAt; output: WorkflowVersion };
  diff_workflow: { input: DiffWorkflow; output: WorkflowDiff };
  restore_workflow: { input: RestoreWorkflow; output: Workflow };
  undelete_workflow: { input: UndeleteWorkflow; output: Workflow };
  sync_status: { input: GetSyncStatus; output: SyncStatus };
  list_schedules: { input: ListSchedules; output: Array<ScheduleRow> };
  own_schedule: { input: OwnSchedule; output: Workflow };
  preview_schedule: { input: PreviewSchedule; output: SchedulePreview };
  export_workflows: { input: ExportWorkflows; output: ExportedWorkflows };
  import_workflows: { input: ImportWorkflows; output: WorkflowImport };
  reveal_config: { input: RevealConfig; output: RevealedConfig };
  rotate_secrets: { input: RotateSecrets; output: SecretsRotated };
  secret_key: { input: SecretKey; output: SecretKey };
};

export type CommandName = keyof Commands;

export const COMMAND_NAMES: CommandName[] = [
  "apply_retention",
  "approve_workflow",
  "count_runs",
  "count_workflows",
  "create_workflow",
  "delete_run",
  "delete_workflow",
  "diff_workflow",
  "duplicate_workflow",
  "export_workflows",
  "finish_run",
  "get_config",
  "get_run",
  "get_run_output",
  "get_settings",
  "get_workflow",
  "import_runs",
  "import_workflows",
  "list_runs",
  "list_schedules",
  "list_tags",
  "list_workflows",
  "own_schedule",
  "preview_schedule",
  "prune_runs",
  "restore_workflow",
  "reveal_config",
  "rotate_secrets",
  "secret_key",
  "set_config_value",
  "set_retention",
  "start_run",
  "sync_status",
  "undelete_workflow",
  "update_config",
  "update_workflow",
  "validate_config",
  "workflow_at",
  "workflow_history",
  "workflow_names",
];
