use flowkeep_core::{ErrorBody, ErrorCode, FieldError};
use flowkeep_store::summarize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the service: the storage's, taken over variant by variant,
/// and the application's own. Each maps to one `ErrorCode`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// Someone else changed the thing first (stream version conflict), or the
    /// change is not allowed in the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("validation failed: {}", summarize(.0))]
    Invalid(Vec<FieldError>),
    /// The run spec or retention policy in effect was changed on another
    /// device and this device has not approved it; the message says who,
    /// where, when and what changed.
    #[error("{0}")]
    NotApproved(String),
    /// The input could not be read at all (malformed JSON, wrong shape).
    #[error("invalid input: {}", summarize(.0))]
    InvalidInput(Vec<FieldError>),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// The sync server cannot be reached, or refused us.
    #[error("sync failed: {0}")]
    Unavailable(String),
    /// A stored row or event that cannot be read back: a bug or a damaged file.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Long work stopped on request (Ctrl-C) before it finished; the message
    /// says what was kept.
    #[error("stopped: {0}")]
    Stopped(String),
    /// A secret could not be sealed or its key kept (no randomness, an
    /// unreadable key file).
    #[error("secrets: {0}")]
    Secret(String),
    /// This device's copy of the synced documents could not be written
    /// (disk full, I/O error): the sync stopped before recording anything
    /// it could not keep.
    #[error("sync stopped: this device could not store the synced documents ({0}); nothing unstored was recorded, and the next sync sends and fetches it again")]
    SyncStorage(String),
    /// The sync engine failed (panicked) on one document, named: a change
    /// to it it could not apply, or a bug. Its copy here is in doubt, so
    /// nothing about it is recorded. A round goes on without it (the
    /// error is seen only when it is the workspace's root).
    #[error("sync stopped: document {0} could not be processed here (the sync engine failed on a change to it; the log says why); nothing about it was recorded, and the next sync loads it again from this device's copy")]
    SyncDocument(String),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::NotApproved(_) => ErrorCode::NotApproved,
            Error::Invalid(_) => ErrorCode::ValidationFailed,
            Error::InvalidInput(_) => ErrorCode::InvalidInput,
            Error::Database(_)
            | Error::Io(_)
            | Error::Corrupt(_)
            | Error::Unavailable(_)
            | Error::Stopped(_)
            | Error::Secret(_)
            | Error::SyncStorage(_)
            | Error::SyncDocument(_) => ErrorCode::Internal,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
            fields: match self {
                Error::Invalid(f) | Error::InvalidInput(f) => f.clone(),
                _ => vec![],
            },
        }
    }

    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Error {
        Error::Invalid(vec![FieldError::new(field, code, message)])
    }

    pub fn workflow_not_found(id: &str) -> Error {
        Error::NotFound {
            entity: "workflow",
            id: id.to_owned(),
        }
    }

    pub fn run_not_found(id: &str) -> Error {
        Error::NotFound {
            entity: "run",
            id: id.to_owned(),
        }
    }
}

impl From<flowkeep_core::Error> for Error {
    fn from(e: flowkeep_core::Error) -> Self {
        match e {
            flowkeep_core::Error::Invalid(f) => Error::Invalid(f),
        }
    }
}

impl From<flowkeep_core::events::DecodeError> for Error {
    fn from(e: flowkeep_core::events::DecodeError) -> Self {
        Error::Corrupt(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Corrupt(e.to_string())
    }
}

impl From<flowkeep_store::Error> for Error {
    fn from(e: flowkeep_store::Error) -> Self {
        use flowkeep_store::Error as S;
        match e {
            S::NotFound { entity, id } => Error::NotFound { entity, id },
            S::Conflict(m) => Error::Conflict(m),
            S::Invalid(f) => Error::Invalid(f),
            S::InvalidInput(f) => Error::InvalidInput(f),
            S::Database(e) => Error::Database(e),
            S::Io(e) => Error::Io(e),
            S::Corrupt(m) => Error::Corrupt(m),
        }
    }
}
