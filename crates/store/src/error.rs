//! The store's one error type.

/// What went wrong. Variants under "caller" are the caller's fault (the API
/// answers 4xx); the rest are ours or the database's (5xx, or a retry).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    // --- caller ---
    /// The object does not exist (or belongs to another account).
    #[error("{kind} not found")]
    NotFound {
        /// `account`, `hostname`, `ca`, …
        kind: &'static str,
    },
    /// A unique name is taken.
    #[error("{kind} {name:?} already exists")]
    Conflict {
        /// What kind of object.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A limit (CA count) is reached.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// The object is still referenced (a CA associated with hostnames).
    #[error("{kind} is in use by {users:?}")]
    InUse {
        /// What kind of object.
        kind: &'static str,
        /// Who uses it (names).
        users: Vec<String>,
    },
    /// Input the store refuses (unknown CA id, bad scope set, …).
    #[error("invalid input: {0}")]
    Invalid(String),

    // --- us / the database ---
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A database error.
    #[error("database error: {0}")]
    Database(String),
    /// The schema is newer than this binary knows.
    #[error("database schema version {found} is newer than this binary's {known}")]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this binary knows.
        known: i64,
    },
    /// A sealed secret cannot be opened (wrong or missing store key).
    #[error("cannot open a sealed secret: {0}")]
    Sealed(String),
    /// I/O on the data dir.
    #[error("{0}")]
    Io(String),
    /// A bug or corrupt row.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    /// True when the caller's input is at fault (4xx).
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound { .. }
                | StoreError::Conflict { .. }
                | StoreError::LimitReached(_)
                | StoreError::InUse { .. }
                | StoreError::Invalid(_)
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        crate::sql::pg_err(e)
    }
}

/// Result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
