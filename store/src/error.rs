use flowkeep_core::FieldError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading or writing the database. The application's
/// error (`flowkeep_app::Error`) takes each variant over as it is and adds
/// its own (sync, approval, a stop on request).
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
    /// The input could not be read at all (malformed JSON, wrong shape).
    #[error("invalid input: {}", summarize(.0))]
    InvalidInput(Vec<FieldError>),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// A stored row or event that cannot be read back: a bug or a damaged file.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl Error {
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

/// The first three problems and how many more: an error's one-line message.
pub fn summarize(errors: &[FieldError]) -> String {
    let mut parts: Vec<String> = errors.iter().take(3).map(|e| e.to_string()).collect();
    if errors.len() > 3 {
        parts.push(format!("and {} more", errors.len() - 3));
    }
    parts.join("; ")
}
