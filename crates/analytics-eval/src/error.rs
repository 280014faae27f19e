//! The evaluation crate's error type: every variant names the file, and the line and field
//! where there is one.

use std::path::PathBuf;

/// Errors of loading benchmark data and scoring it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not what the format requires.
    #[error("{path}:{line}: {field}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 for the file as a whole).
        line: usize,
        /// The column or field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Scores do not fit the corpus they are scored against.
    #[error("{file}: {message}")]
    Mismatch {
        /// The corpus file (e.g. `realTraffic/speed_6005.csv`).
        file: String,
        /// What does not fit.
        message: String,
    },
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io { path: path.into(), source }
    }

    pub(crate) fn parse(
        path: impl Into<PathBuf>,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        EvalError::Parse { path: path.into(), line, field: field.into(), message: message.into() }
    }
}
