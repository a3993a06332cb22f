//! The error shape shared by every interface (CLI `--json`, HTTP API, Tauri).

use serde::{Deserialize, Serialize};

/// One problem with one field of an input: where, which rule, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct FieldError {
    /// Path of the offending field, e.g. `values.retries` or `fields.mode.options`.
    pub field: String,
    /// The rule that failed, e.g. `required`, `range`, `format`.
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.field, self.code, self.message)
    }
}

/// Errors of the domain layer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// The input breaks one or more rules; every problem is listed.
    #[error("validation failed: {}", summarize(.0))]
    Invalid(Vec<FieldError>),
}

pub(crate) fn summarize(errors: &[FieldError]) -> String {
    let mut parts: Vec<String> = errors.iter().take(3).map(|e| e.to_string()).collect();
    if errors.len() > 3 {
        parts.push(format!("and {} more", errors.len() - 3));
    }
    parts.join("; ")
}

/// The machine-readable class of an error; also decides the CLI exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    NotFound,
    Conflict,
    InvalidInput,
    /// The workflow's run spec (or retention policy) was changed on another
    /// device and this device has not approved it.
    NotApproved,
    Internal,
}

impl ErrorCode {
    /// Exit codes from DESIGN.md: 3 validation, 4 not found, 5 conflict,
    /// 6 not approved on this device, 1 other.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::ValidationFailed | ErrorCode::InvalidInput => 3,
            ErrorCode::NotFound => 4,
            ErrorCode::Conflict => 5,
            ErrorCode::NotApproved => 6,
            ErrorCode::Internal => 1,
        }
    }
}

/// `{"code": .., "message": .., "fields": [..]}`: the one JSON error shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

impl From<&Error> for ErrorBody {
    fn from(err: &Error) -> Self {
        match err {
            Error::Invalid(fields) => ErrorBody {
                code: ErrorCode::ValidationFailed,
                message: err.to_string(),
                fields: fields.clone(),
            },
        }
    }
}
