//! Workflows as files: `workflows().export_files` writes one canonical
//! `<slug>.flowkeep.yaml` per workflow; `workflows().import_files` reads a
//! folder (or files) back, all or nothing: every file is read and checked
//! before anything is written, then one transaction appends one ordinary
//! event per changed workflow. What each file said at its last export or
//! import is kept (`file_bases`) as the base of the next import's
//! three-way merge (`core::files::merge`).

mod yaml;

use std::path::{Path, PathBuf};

use flowkeep_core::commands::{
    ExportWorkflows, ExportedFile, ExportedWorkflows, ImportAction, ImportItem, ImportWorkflows,
    Input, MatchBy, WorkflowImport,
};
use flowkeep_core::events::{Event, WorkflowChangedV1, WorkflowCreatedV1};
use flowkeep_core::files::{self, FileWorkflow};
use flowkeep_core::workflow::{self, WorkflowSpec};
use flowkeep_core::FieldError;
use flowkeep_store::event_log::Expected;
use flowkeep_store::queries;

use crate::service::{parse_config_lenient, validation_errors};
use crate::{Error, Result, WorkflowService};

/// The ending of a workflow file.
pub const SUFFIX: &str = ".flowkeep.yaml";
/// Largest file an import reads.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

impl WorkflowService<'_> {
    /// Writes the workflows (all live ones, or those the filters pick) into
    /// `dir`, one file each, and keeps what each file says as its base.
    pub fn export_files(&self, mut input: ExportWorkflows) -> Result<ExportedWorkflows> {
        input.check()?;
        let dir = PathBuf::from(&input.dir);
        let workflows = self.read(|c| {
            let mut ids =
                queries::workflows::ids(c, input.search.as_deref(), input.tag.as_deref())?;
            if !input.ids.is_empty() {
                for id in &input.ids {
                    if !ids.contains(id) {
                        return Err(Error::workflow_not_found(id));
                    }
                }
                ids.retain(|id| input.ids.contains(id));
            }
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(queries::workflows::get(c, &id)?);
            }
            Ok(out)
        })?;
        // A folder of the user's (a repository, their home) keeps its mode;
        // one made here is private.
        if !dir.is_dir() {
            flowkeep_store::private::create_dir(&dir).map_err(|e| io_error("dir", &dir, e))?;
        }
        let names = files::file_names(
            &workflows
                .iter()
                .map(|w| (w.id.clone(), w.spec.name.clone()))
                .collect::<Vec<_>>(),
        );
        let mut written = Vec::with_capacity(workflows.len());
        for (wf, name) in workflows.iter().zip(names) {
            // A file of that name that holds another workflow (exported
            // before, alone) is not written over.
            let name = if holds_another(&dir.join(&name), &wf.id) {
                files::file_name_with_id(&wf.id, &wf.spec.name)
            } else {
                name
            };
            let text = yaml::write(&files::document(wf));
            write_file(&dir.join(&name), text.as_bytes())?;
            written.push(ExportedFile {
                workflow_id: wf.id.clone(),
                file: name,
            });
        }
        self.write(|w| {
            for wf in &workflows {
                queries::file_bases::set(w.conn, &wf.id, &wf.spec, w.now)?;
            }
            Ok(())
        })?;
        Ok(ExportedWorkflows {
            dir: dir.display().to_string(),
            files: written,
        })
    }

    /// Creates or updates workflows from files; see the module.
    pub fn import_files(&self, mut input: ImportWorkflows) -> Result<WorkflowImport> {
        input.check()?;
        let paths = import_paths(&input)?;
        let mut errors = Vec::new();
        let mut parsed: Vec<(String, String, FileWorkflow)> = Vec::new();
        for path in &paths {
            let label = label_of(path);
            match read_file(path, &label) {
                Ok((text, wf)) => parsed.push((label, text, wf)),
                Err(found) => errors.extend(found),
            }
        }
        // One file per workflow.
        let mut seen = std::collections::HashMap::new();
        for (label, text, wf) in &parsed {
            if let Some(id) = &wf.id {
                if let Some(first) = seen.insert(id.clone(), label.clone()) {
                    errors.push(at(
                        label,
                        text,
                        "id",
                        "duplicate",
                        format!("workflow {id} is also in {first}"),
                    ));
                }
            }
        }
        let me = self.device_id().to_owned();
        let plan = self.read(|c| {
            let mut plan = Vec::new();
            for (label, text, file) in &parsed {
                match plan_one(self, c, &input, label, text, file, &me) {
                    Ok(p) => plan.push(p),
                    Err(found) => errors.extend(found),
                }
            }
            Ok(plan)
        })?;
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let items: Vec<ImportItem> = plan.iter().map(|p| p.item.clone()).collect();
        let created_without_id = match input.match_by {
            MatchBy::Id => parsed
                .iter()
                .zip(&items)
                .filter(|((_, _, file), item)| {
                    file.id.is_none() && item.action == ImportAction::Create
                })
                .count() as u32,
            MatchBy::Name => 0,
        };
        if input.dry_run {
            return Ok(WorkflowImport {
                items,
                applied: false,
                created_without_id,
            });
        }
        self.write(|w| {
            for p in &plan {
                // Planned outside the write lock: a workflow changed since
                // is a conflict, and nothing of the import is written.
                let now = queries::workflows::load(w.conn, &p.item.workflow_id)?;
                if now.as_ref().map(|l| l.workflow.revision) != p.revision {
                    return Err(Error::Conflict(format!(
                        "workflow {} changed while the import was checked; nothing was imported, try again",
                        p.item.workflow_id
                    )));
                }
                match p.item.action {
                    ImportAction::Create => {
                        w.append(
                            &p.item.workflow_id,
                            Expected::NoStream,
                            Event::WorkflowCreated(WorkflowCreatedV1 {
                                spec: p.merged.clone(),
                                duplicated_from: None,
                            }),
                        )?;
                    }
                    ImportAction::Update => {
                        w.append(
                            &p.item.workflow_id,
                            Expected::Version(p.revision.unwrap_or_default()),
                            Event::WorkflowUpdated(WorkflowChangedV1 {
                                changes: p.item.changes.clone(),
                            }),
                        )?;
                    }
                    ImportAction::Unchanged | ImportAction::Conflict => {}
                }
                if p.item.action != ImportAction::Conflict {
                    queries::file_bases::set(w.conn, &p.item.workflow_id, &p.file_spec, w.now)?;
                }
            }
            Ok(())
        })?;
        Ok(WorkflowImport {
            items,
            applied: true,
            created_without_id,
        })
    }
}

/// What the import does with one file.
struct Planned {
    item: ImportItem,
    /// The workflow's revision when planned (`None`: it does not exist).
    revision: Option<u64>,
    /// The spec to create with.
    merged: WorkflowSpec,
    /// What the file says: the next base.
    file_spec: WorkflowSpec,
}

fn plan_one(
    svc: &crate::Service,
    c: &rusqlite::Connection,
    input: &ImportWorkflows,
    label: &str,
    text: &str,
    file: &FileWorkflow,
    me: &str,
) -> Result<Planned, Vec<FieldError>> {
    let fail =
        |field: &str, code: &str, message: String| vec![at(label, text, field, code, message)];
    let storage = |e: crate::Error| vec![FieldError::new(label, "storage", e.to_string())];
    let target = match input.match_by {
        MatchBy::Id => file.id.clone(),
        MatchBy::Name => {
            let named =
                queries::workflows::ids_named(c, &file.spec.name).map_err(|e| storage(e.into()))?;
            match named.len() {
                0 => None,
                1 => Some(named[0].clone()),
                n => {
                    return Err(fail(
                        "name",
                        "ambiguous",
                        format!(
                            "{n} workflows here are named {:?}; import by id instead",
                            file.spec.name
                        ),
                    ))
                }
            }
        }
    };
    let existing = match &target {
        Some(id) => queries::workflows::load(c, id).map_err(|e| storage(e.into()))?,
        None => None,
    };
    let mut file_spec = file.spec.clone();
    let (item, revision, merged) = match existing {
        Some(l) if l.deleted => {
            return Err(fail(
                "id",
                "deleted",
                format!(
                    "workflow {} was deleted here: `flowkeep workflow undelete {}` first, or remove the id to create a new workflow",
                    l.workflow.id, l.workflow.id
                ),
            ))
        }
        Some(l) => {
            let local = l.workflow;
            let base = queries::file_bases::get(c, &local.id).map_err(|e| storage(e.into()))?;
            flowkeep_core::schedule::settle_owner(&mut file_spec, base.as_ref().or(Some(&local.spec)), me);
            // Clear text in a hand-written file is sealed as it is read;
            // `••••` keeps the value here.
            svc.seal_secrets(&mut file_spec, Some(&local.spec))
                .map_err(|e| vec![FieldError::new(label, "secret", e.to_string())])?;
            let m = files::merge(base.as_ref(), &local.spec, &file_spec, input.prefer);
            let changes = if m.conflicts.is_empty() {
                workflow::diff(&local.spec, &m.merged)
            } else {
                vec![]
            };
            if m.conflicts.is_empty() {
                check_spec(label, text, &m.merged)?;
            }
            let action = if !m.conflicts.is_empty() {
                ImportAction::Conflict
            } else if changes.is_empty() {
                ImportAction::Unchanged
            } else {
                ImportAction::Update
            };
            (
                ImportItem {
                    file: label.to_owned(),
                    workflow_id: local.id.clone(),
                    name: local.spec.name.clone(),
                    action,
                    changes,
                    conflicts: m.conflicts,
                },
                Some(local.revision),
                m.merged,
            )
        }
        None => {
            flowkeep_core::schedule::settle_owner(&mut file_spec, None, me);
            check_spec(label, text, &file_spec)?;
            svc.seal_secrets(&mut file_spec, None)
                .map_err(|e| vec![FieldError::new(label, "secret", e.to_string())])?;
            // The file's id when it is free here (it always is by id: no
            // workflow has it), else a new one.
            let id = match &file.id {
                Some(id) if queries::workflows::load(c, id).map_err(|e| storage(e.into()))?.is_none() => {
                    id.clone()
                }
                _ => uuid::Uuid::now_v7().to_string(),
            };
            (
                ImportItem {
                    file: label.to_owned(),
                    workflow_id: id,
                    name: file_spec.name.clone(),
                    action: ImportAction::Create,
                    changes: workflow::diff(&WorkflowSpec::default(), &file_spec),
                    conflicts: vec![],
                },
                None,
                file_spec.clone(),
            )
        }
    };
    Ok(Planned {
        item,
        revision,
        merged,
        file_spec,
    })
}

/// The rules every workflow keeps, on what the import would write.
fn check_spec(label: &str, text: &str, spec: &WorkflowSpec) -> Result<(), Vec<FieldError>> {
    let found = validation_errors(&spec.config);
    if found.is_empty() {
        return Ok(());
    }
    Err(found
        .into_iter()
        .map(|e| {
            let path = format!("config.{}", e.field);
            at(label, text, &path, &e.code, e.message)
        })
        .collect())
}

/// A problem in a file, named `<file>:<line>: <field>` (the line when the
/// field is found in the text).
fn at(label: &str, text: &str, field: &str, code: &str, message: String) -> FieldError {
    let place = match yaml::line_of(text, field) {
        Some(line) => format!("{label}:{line}"),
        None => label.to_owned(),
    };
    let name = if field.is_empty() {
        place
    } else {
        format!("{place}: {field}")
    };
    FieldError::new(name, code, message)
}

/// Why a file given to read was not read.
#[derive(Debug)]
pub enum Unreadable {
    Io(std::io::Error),
    /// A device, a FIFO, a directory: read only from regular files.
    NotRegular,
    /// At least this many bytes, more than the limit.
    TooLarge(u64),
}

/// A regular file's text, at most `max` bytes when given. What was opened is
/// what is checked, and no more than the limit is read whatever its size
/// says (`/dev/zero` named by mistake, a FIFO, a file growing meanwhile).
pub fn read_regular(path: &Path, max: Option<u64>) -> std::result::Result<String, Unreadable> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a named pipe waits for a writer, for good; opened without
    // waiting, it is then refused as not a regular file. A regular file
    // reads the same either way.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        nix::fcntl::OFlag::O_NONBLOCK.bits(),
    );
    let file = options.open(path).map_err(Unreadable::Io)?;
    let meta = file.metadata().map_err(Unreadable::Io)?;
    if !meta.is_file() {
        return Err(Unreadable::NotRegular);
    }
    let limit = max.unwrap_or(u64::MAX);
    if meta.len() > limit {
        return Err(Unreadable::TooLarge(meta.len()));
    }
    let mut text = String::new();
    file.take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(Unreadable::Io)?;
    if text.len() as u64 > limit {
        return Err(Unreadable::TooLarge(text.len() as u64));
    }
    Ok(text)
}

fn read_file(path: &Path, label: &str) -> Result<(String, FileWorkflow), Vec<FieldError>> {
    let whole = |code: &str, message: String| vec![FieldError::new(label, code, message)];
    let text = read_regular(path, Some(MAX_FILE_BYTES)).map_err(|why| match why {
        Unreadable::Io(e) => whole("file", format!("cannot read it: {e}")),
        Unreadable::NotRegular => whole(
            "file",
            "not a regular file; workflow files are read only from regular files".into(),
        ),
        Unreadable::TooLarge(len) => whole(
            "size",
            format!("{len} bytes or more; a workflow file holds at most 4 MiB"),
        ),
    })?;
    let doc = yaml::read(&text).map_err(|e| {
        let place = match e.line {
            Some(line) => format!("{label}:{line}"),
            None => label.to_owned(),
        };
        vec![FieldError::new(
            place,
            "yaml",
            format!("not valid YAML: {}", e.message),
        )]
    })?;
    let wf = files::read(&doc, parse_config_lenient).map_err(|found| {
        found
            .into_iter()
            .map(|e| at(label, &text, &e.field, &e.code, e.message))
            .collect::<Vec<_>>()
    })?;
    Ok((text, wf))
}

/// The files an import reads: the given ones, then every `*.flowkeep.yaml`
/// in `dir`, by name.
fn import_paths(input: &ImportWorkflows) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = input.files.iter().map(PathBuf::from).collect();
    if let Some(dir) = &input.dir {
        let dir = PathBuf::from(dir);
        let entries = std::fs::read_dir(&dir).map_err(|e| io_error("dir", &dir, e))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                // A symbolic link in the folder is not followed: a
                // repository's link could point anywhere on this machine.
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.'))
                    && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
            })
            .collect();
        found.sort();
        out.extend(found);
    }
    if out.is_empty() {
        return Err(match &input.dir {
            Some(d) => Error::invalid("dir", "empty", format!("{d} holds no *{SUFFIX} file")),
            None => Error::invalid(
                "dir",
                "required",
                "give a folder (--dir) or files to import",
            ),
        });
    }
    Ok(out)
}

/// How a file is named in messages: its name, or its path when given one.
fn label_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Writes `bytes` to `path` through `path.partial` (new, 0600) and a
/// rename, so a reader never sees half a file.
/// Whether the file at `path` is a workflow file of another workflow than
/// `id`'s (one that does not read, or has no id, is not known to be).
fn holds_another(path: &Path, id: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    yaml::read(&text)
        .ok()
        .and_then(|doc| doc.get("id")?.as_str().map(|other| other != id))
        .unwrap_or(false)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = flowkeep_store::private::create_new(&tmp).map_err(|e| io_error("dir", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_error("dir", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error("dir", path, e))?;
    Ok(())
}

fn io_error(field: &str, path: &Path, e: std::io::Error) -> Error {
    Error::invalid(field, "file", format!("{}: {e}", path.display()))
}

/// Lets tests and the bench write YAML the way export does.
pub fn write_document(wf: &flowkeep_core::workflow::Workflow) -> String {
    yaml::write(&files::document(wf))
}
