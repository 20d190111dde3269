//! What can go wrong with the routing store, always naming the file it happened to.

use std::io;
use std::path::PathBuf;

/// A failure of the routing store. Every variant but a bad config names the store's file, so
/// an operator knows which replica's disk to look at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The configuration cannot work; nothing was opened.
    #[error("routing store config: `{field}` {reason}")]
    InvalidConfig {
        /// The field of [`StoreConfig`](super::StoreConfig) that is wrong.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// redb could not open or create the file: missing directory, not a redb file, damaged,
    /// or still open in this or another process.
    #[error("cannot open routing store {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: Box<redb::DatabaseError>,
    },

    /// Reading or writing the file failed after it was open.
    #[error("routing store {}: cannot {action}: {source}", path.display())]
    Redb {
        /// The file.
        path: PathBuf,
        /// What the store was doing, as a verb phrase ("commit", "read the log"…).
        action: &'static str,
        /// What redb reported.
        #[source]
        source: Box<redb::Error>,
    },

    /// A stored record does not decode: the file is damaged, or was written by a build whose
    /// routing state or Raft types have a different shape.
    #[error("routing store {}: cannot decode the {what}: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Which record ("vote", "log entry 42", "snapshot"…).
        what: String,
        /// What postcard reported.
        #[source]
        source: postcard::Error,
    },

    /// A value could not be encoded: a type postcard cannot represent.
    #[error("routing store {}: cannot encode the {what}: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// Which value.
        what: &'static str,
        /// What postcard reported.
        #[source]
        source: postcard::Error,
    },

    /// The file was written with a table layout this build does not know (a newer Hotline).
    #[error(
        "routing store {}: table layout version {found}, this build reads version {supported}",
        path.display()
    )]
    UnsupportedLayout {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The version this build writes and reads.
        supported: u64,
    },

    /// The writer thread could not be started.
    #[error("routing store {}: cannot start the writer thread: {source}", path.display())]
    Spawn {
        /// The file.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },

    /// An earlier commit failed, so the store refuses every later write: what is on disk no
    /// longer matches what Raft was told, and only a restart (which reads the disk) is safe.
    #[error("routing store {}: stopped after a failed write: {reason}", path.display())]
    Failed {
        /// The file.
        path: PathBuf,
        /// The first failure, as text.
        reason: String,
    },

    /// The writer thread has stopped, so nothing more can be written.
    #[error("routing store {}: the writer has stopped", path.display())]
    WriterStopped {
        /// The file.
        path: PathBuf,
    },
}

impl StoreError {
    /// Whether trying again later may succeed: only a file still held open, by a process that
    /// is stopping or by this one's previous store that has not finished closing. Everything
    /// else needs a person (a bad config, a damaged disk) or a restart (a failed write).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Open { source, .. } => {
                matches!(**source, redb::DatabaseError::DatabaseAlreadyOpen)
            }
            _ => false,
        }
    }
}

/// openraft's storage traits speak `io::Error`; the store's error rides inside it, message and all.
impl From<StoreError> for io::Error {
    fn from(err: StoreError) -> Self {
        let kind = match &err {
            StoreError::Decode { .. } | StoreError::UnsupportedLayout { .. } => {
                io::ErrorKind::InvalidData
            }
            StoreError::InvalidConfig { .. } => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}
