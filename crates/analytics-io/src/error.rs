//! The I/O crate's error type: every variant says where (file and line, or URL) and what.

use std::path::PathBuf;

/// Errors of reading metrics and writing results.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file or its folder could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Bad input: a line of a file is not what the format requires.
    #[error("{path}:{line}: {field}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// 1-based line number; 0 for the file as a whole.
        line: usize,
        /// The column or field at fault (`header` for the header line).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A source's configuration is unusable (a missing option, a bad URL).
    #[error("{0}")]
    Config(String),
    /// A remote source failed (HTTP status, malformed answer, timeout, refused connection).
    #[error("{source_name}: {message}")]
    Remote {
        /// Which source (e.g. the Prometheus URL).
        source_name: String,
        /// What went wrong, after retries.
        message: String,
    },
    /// The result store failed.
    #[error("result store {path}: {message}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl IoError {
    pub(crate) fn input(
        path: impl Into<PathBuf>,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        IoError::Input { path: path.into(), line, field: field.into(), message: message.into() }
    }
}
