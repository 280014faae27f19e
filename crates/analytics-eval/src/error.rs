//! The evaluation crate's error type: scores that do not fit the corpus, naming the file.

/// Errors of scoring benchmark data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Scores do not fit the corpus they are scored against.
    #[error("{file}: {message}")]
    Mismatch {
        /// The corpus file (e.g. `realTraffic/speed_6005.csv`).
        file: String,
        /// What does not fit.
        message: String,
    },
}
