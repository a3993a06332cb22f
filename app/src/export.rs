//! Streams executions to a writer row by row: memory stays flat however many
//! rows match.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use flowkeep_core::commands::{ExportFormat, RunFilter};
use flowkeep_core::run::Run;
use flowkeep_core::FieldError;
use rusqlite::params_from_iter;

use crate::{Error, Result, RunService};
use flowkeep_store::queries::runs::{filter_sql, from_row, COLUMNS};

/// CSV columns, in order.
pub const CSV_HEADER: [&str; 11] = [
    "id",
    "workflow_id",
    "status",
    "started_at",
    "completed_at",
    "duration_ms",
    "exit_code",
    "error",
    "trigger",
    "device_id",
    "output",
];

impl RunService<'_> {
    /// Writes every execution matching `filter`, newest first, and returns
    /// how many were written. `progress` is called with the running count;
    /// an error it returns ends the export with that error.
    pub fn export(
        &self,
        filter: &RunFilter,
        format: ExportFormat,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<u64> {
        self.read(|c| {
            let (where_sql, args) = filter_sql(filter);
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM executions {where_sql} ORDER BY started_at DESC, id DESC"
            ))?;
            let mut rows = stmt.query(params_from_iter(args))?;
            let mut sink = Sink::new(format, out)?;
            let mut n = 0u64;
            while let Some(r) = rows.next()? {
                sink.row(&from_row(r)?)?;
                n += 1;
                if n.is_multiple_of(1024) {
                    progress(n)?;
                }
            }
            sink.finish()?;
            progress(n)?;
            Ok(n)
        })
    }
}

impl RunService<'_> {
    /// `export_runs` into the file `path`, safely: the rows go to
    /// `<path>.partial` (the whole name plus `.partial`, so `report.csv`
    /// never touches an unrelated `report.partial`), created new with mode
    /// 0600, and renamed onto `path` once complete. The partial file is
    /// created with `O_EXCL`, so an existing file or symlink of that name is
    /// never followed or replaced: the export fails and names it instead.
    /// A failed export, or one stopped by setting `stop` (checked every
    /// 1,024 rows), removes its partial file and leaves `path` alone.
    pub fn export_to_file(
        &self,
        filter: &RunFilter,
        format: ExportFormat,
        path: &Path,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        // Found before the rows are written, not by the rename after them.
        if path.is_dir() {
            return Err(Error::InvalidInput(vec![FieldError::new(
                "out",
                "file",
                format!(
                    "{} is a folder; give the file to write, such as {}",
                    path.display(),
                    path.join(format!("runs.{}", format.extension())).display()
                ),
            )]));
        }
        let partial = partial_path(path)?;
        let file = flowkeep_store::private::create_new(&partial).map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
                "it already exists (another export, or one that was interrupted); remove it or export to another name".to_owned()
            } else {
                e.to_string()
            };
            Error::InvalidInput(vec![FieldError::new(
                "out",
                "file",
                format!("cannot create {}: {why}", partial.display()),
            )])
        })?;
        let mut out = BufWriter::new(file);
        let mut stopped = false;
        let written = self
            .runs()
            .export(filter, format, &mut out, &mut |n| {
                progress(n);
                stopped = stop.load(Ordering::Relaxed);
                if stopped {
                    // Ends the row loop with an error that the rest of this
                    // function turns into `Stopped` after cleaning up.
                    return Err(Error::Stopped(String::new()));
                }
                Ok(())
            })
            .and_then(|n| {
                let file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                Ok(n)
            })
            .and_then(|n| {
                std::fs::rename(&partial, path)?;
                Ok(n)
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        if stopped {
            return Err(Error::Stopped(format!(
                "the export was interrupted; {} was not written",
                path.display()
            )));
        }
        written
    }
}

/// `<path>.partial`, beside `path`.
fn partial_path(path: &Path) -> Result<PathBuf> {
    let Some(name) = path.file_name() else {
        return Err(Error::InvalidInput(vec![FieldError::new(
            "out",
            "file",
            format!("{} is not a file name", path.display()),
        )]));
    };
    let mut partial = name.to_owned();
    partial.push(".partial");
    Ok(path.with_file_name(partial))
}

enum Sink<'a> {
    Json { out: &'a mut dyn Write, first: bool },
    Ndjson(&'a mut dyn Write),
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
}

impl<'a> Sink<'a> {
    fn new(format: ExportFormat, out: &'a mut dyn Write) -> Result<Sink<'a>> {
        Ok(match format {
            ExportFormat::Json => {
                out.write_all(b"[")?;
                Sink::Json { out, first: true }
            }
            ExportFormat::Ndjson => Sink::Ndjson(out),
            ExportFormat::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(CSV_HEADER).map_err(csv_err)?;
                Sink::Csv(Box::new(w))
            }
        })
    }

    fn row(&mut self, e: &Run) -> Result<()> {
        match self {
            Sink::Json { out, first } => {
                out.write_all(if *first { b"\n" } else { b",\n" })?;
                *first = false;
                serde_json::to_writer(&mut **out, e)?;
            }
            Sink::Ndjson(out) => {
                serde_json::to_writer(&mut **out, e)?;
                out.write_all(b"\n")?;
            }
            Sink::Csv(w) => {
                let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
                w.write_record([
                    e.id.as_str(),
                    &e.workflow_id,
                    e.status.as_str(),
                    &iso8601(e.started_at),
                    &e.completed_at.map(iso8601).unwrap_or_default(),
                    &opt(e.duration_ms),
                    &opt(e.exit_code),
                    e.error.as_deref().unwrap_or(""),
                    &e.trigger,
                    &e.device_id,
                    &e.output.as_ref().map(|o| o.to_string()).unwrap_or_default(),
                ])
                .map_err(csv_err)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Json { out, first } => {
                out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
                out.flush()?;
            }
            Sink::Ndjson(out) => out.flush()?,
            Sink::Csv(mut w) => w.flush()?,
        }
        Ok(())
    }
}

/// A time as a spreadsheet and a person read it (UTC, milliseconds kept);
/// JSON and NDJSON keep Unix milliseconds, which `exec import` takes back.
fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

fn csv_err(e: csv::Error) -> crate::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into(),
        other => crate::Error::Corrupt(format!("csv: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use flowkeep_core::commands::{CreateWorkflow, StartRun};

    use super::*;
    use crate::Service;

    fn service_with_a_run() -> Service {
        let svc = Service::open_in_memory(Default::default()).unwrap();
        let wf = svc
            .workflows()
            .create(CreateWorkflow {
                name: "w".to_owned(),
                ..Default::default()
            })
            .unwrap();
        svc.runs()
            .start(StartRun {
                workflow_id: wf.id,
                status: None,
                trigger: None,
            })
            .unwrap();
        svc
    }

    #[test]
    fn a_stopped_export_leaves_no_partial_file_and_the_target_as_it_was() {
        let svc = service_with_a_run();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.csv");
        std::fs::write(&target, "yesterday's report").unwrap();
        let err = svc
            .runs()
            .export_to_file(
                &RunFilter::default(),
                ExportFormat::Csv,
                &target,
                &AtomicBool::new(true),
                &mut |_| {},
            )
            .unwrap_err();
        assert!(matches!(err, Error::Stopped(_)), "{err}");
        assert!(
            err.to_string().contains("report.csv was not written"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "yesterday's report"
        );
        assert!(!dir.path().join("report.csv.partial").exists());
    }

    #[test]
    fn partial_is_the_whole_name_plus_partial() {
        assert_eq!(
            partial_path(Path::new("/x/report.csv")).unwrap(),
            Path::new("/x/report.csv.partial")
        );
        assert_eq!(
            partial_path(Path::new("report")).unwrap(),
            Path::new("report.partial")
        );
        assert!(partial_path(Path::new("/")).is_err());
    }

    #[test]
    fn exports_are_private_beside_the_target_and_never_follow_a_symlink() {
        let svc = service_with_a_run();
        let dir = tempfile::tempdir().unwrap();
        let unrelated = dir.path().join("report.partial");
        std::fs::write(&unrelated, "unrelated").unwrap();
        let target = dir.path().join("report.csv");
        let n = svc
            .runs()
            .export_to_file(
                &RunFilter::default(),
                ExportFormat::Csv,
                &target,
                &AtomicBool::new(false),
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 2);
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&unrelated).unwrap(), "unrelated");
        assert!(!dir.path().join("report.csv.partial").exists());

        // A symlink where the partial file would go: refused, its target untouched.
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "original").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("r2.csv.partial")).unwrap();
        let err = svc
            .runs()
            .export_to_file(
                &RunFilter::default(),
                ExportFormat::Csv,
                &dir.path().join("r2.csv"),
                &AtomicBool::new(false),
                &mut |_| {},
            )
            .unwrap_err();
        let Error::InvalidInput(f) = &err else {
            panic!("{err}")
        };
        assert_eq!(f[0].field, "out");
        assert!(f[0].message.contains("r2.csv.partial"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original");
        assert!(!dir.path().join("r2.csv").exists());
        assert!(
            dir.path().join("r2.csv.partial").is_symlink(),
            "left as it was"
        );
    }
}
