//! Streams executions to a writer row by row: memory stays flat however many
//! rows match.

use std::io::Write;

use flowkeep_core::commands::{ExecutionFilter, ExportFormat};
use flowkeep_core::execution::Execution;
use rusqlite::params_from_iter;

use crate::queries::executions::{filter_sql, from_row, COLUMNS};
use crate::{Result, Service};

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

impl Service {
    /// Writes every execution matching `filter`, newest first, and returns
    /// how many were written. `progress` is called with the running count.
    pub fn export_executions(
        &self,
        filter: &ExecutionFilter,
        format: ExportFormat,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
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
                    progress(n);
                }
            }
            sink.finish()?;
            progress(n);
            Ok(n)
        })
    }
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

    fn row(&mut self, e: &Execution) -> Result<()> {
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
                    &e.started_at.to_string(),
                    &opt(e.completed_at),
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

fn csv_err(e: csv::Error) -> crate::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into(),
        other => crate::Error::Corrupt(format!("csv: {other:?}")),
    }
}
