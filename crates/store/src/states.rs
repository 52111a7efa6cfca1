//! A recording's state and location as the index keeps them: enums in
//! code, short words in the database (`recording`, `complete`,
//! `incomplete`; `local`, `bucket:NAME`, `missing`).

use std::fmt;

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordingState {
    /// Open: events are still being written.
    Recording,
    /// Closed and sealed by moat.
    Complete,
    /// Left open by an unclean stop and sealed at the next start.
    Incomplete,
}

impl RecordingState {
    pub const ALL: [RecordingState; 3] = [
        RecordingState::Recording,
        RecordingState::Complete,
        RecordingState::Incomplete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Complete => "complete",
            RecordingState::Incomplete => "incomplete",
        }
    }

    pub fn parse(s: &str) -> Option<RecordingState> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Closed (complete or not): it can be verified, read and deleted.
    pub fn is_closed(self) -> bool {
        self != RecordingState::Recording
    }
}

impl fmt::Display for RecordingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a recording's files are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// On this node's disk, in the recordings folder.
    Local,
    /// Moved to the named bucket (and removed from local disk).
    Bucket(String),
    /// Neither on local disk nor in its bucket (not retried).
    Missing,
}

impl Location {
    pub fn bucket(&self) -> Option<&str> {
        match self {
            Location::Local | Location::Missing => None,
            Location::Bucket(b) => Some(b),
        }
    }

    /// The database's spelling.
    pub fn to_db(&self) -> String {
        match self {
            Location::Local => "local".into(),
            Location::Bucket(b) => format!("bucket:{b}"),
            Location::Missing => "missing".into(),
        }
    }

    /// Reads the database's spelling; anything unknown is local (the
    /// folder is looked for where moat keeps recordings).
    pub fn from_db(s: &str) -> Location {
        match s.strip_prefix("bucket:") {
            Some(b) => Location::Bucket(b.to_owned()),
            None if s == "missing" => Location::Missing,
            None => Location::Local,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_db())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for s in RecordingState::ALL {
            assert_eq!(RecordingState::parse(s.as_str()), Some(s));
        }
        assert_eq!(RecordingState::parse("done"), None);
        assert!(!RecordingState::Recording.is_closed());
        assert!(RecordingState::Incomplete.is_closed());
        for l in [
            Location::Local,
            Location::Bucket("b-1".into()),
            Location::Missing,
        ] {
            assert_eq!(Location::from_db(&l.to_db()), l);
        }
        assert_eq!(Location::Bucket("x".into()).bucket(), Some("x"));
    }
}
