//! What a CLI command answers: a result rendered for people and as JSON,
//! or a failure in the one error shape.

use flowkeep_core::{ErrorBody, ErrorCode, FieldError};

/// What went wrong, in the DESIGN.md error shape.
#[derive(Debug)]
pub enum Failure {
    Store(flowkeep_app::Error),
    /// Input the CLI could not read (malformed JSON, bad date, ...).
    Input(Vec<FieldError>),
    Other(anyhow::Error),
}

impl From<flowkeep_app::Error> for Failure {
    fn from(e: flowkeep_app::Error) -> Self {
        Failure::Store(e)
    }
}

impl From<FieldError> for Failure {
    fn from(e: FieldError) -> Self {
        Failure::Input(vec![e])
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.into())
    }
}

impl Failure {
    pub fn body(&self) -> ErrorBody {
        match self {
            Failure::Store(e) => e.body(),
            Failure::Input(fields) => ErrorBody {
                code: ErrorCode::InvalidInput,
                message: format!(
                    "invalid input: {}",
                    fields
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                fields: fields.clone(),
            },
            Failure::Other(e) => ErrorBody {
                code: ErrorCode::Internal,
                message: format!("{e:#}"),
                fields: vec![],
            },
        }
    }
}

/// A command's result: JSON for `--json`, text for people, and the exit code.
pub struct Rendered {
    pub json: serde_json::Value,
    pub text: String,
    pub exit: u8,
}

impl Rendered {
    pub fn ok(json: serde_json::Value, text: String) -> Rendered {
        Rendered {
            json,
            text,
            exit: 0,
        }
    }
}
