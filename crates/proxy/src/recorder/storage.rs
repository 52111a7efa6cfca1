//! Local recording storage: how much room there is, the state moat acts
//! on, and what the once-a-second check last saw.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Local storage as the recorder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageState {
    Available,
    /// Free space is below the minimum: no new recorded session starts.
    Low,
    /// Free space is below half the minimum.
    CriticallyLow,
    OutOfStorage,
    /// Free space could not be read.
    Unknown,
    /// No app records sessions.
    NotConfigured,
}

impl StorageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageState::Available => "available",
            StorageState::Low => "low storage",
            StorageState::CriticallyLow => "critically low storage",
            StorageState::OutOfStorage => "out of storage",
            StorageState::Unknown => "unknown",
            StorageState::NotConfigured => "not configured",
        }
    }
}

/// Free bytes on the file system holding `path`.
pub fn available_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into `s`, a zeroed struct of the right type,
    // and reads the NUL-terminated path `c`.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

pub fn storage_state(path: &Path, minimum: u64) -> StorageState {
    match available_bytes(path) {
        None => StorageState::Unknown,
        Some(0) => StorageState::OutOfStorage,
        Some(free) if free < minimum / 2 => StorageState::CriticallyLow,
        Some(free) if free < minimum => StorageState::Low,
        Some(_) => StorageState::Available,
    }
}

/// What the once-a-second check last saw of the recordings folder.
pub struct StorageMonitor {
    root: PathBuf,
    last: Mutex<Option<StorageState>>,
}

impl StorageMonitor {
    pub fn new(root: PathBuf) -> StorageMonitor {
        StorageMonitor {
            root,
            last: Mutex::new(None),
        }
    }

    /// The folder watched.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The state now: `recorded` says whether any app records sessions.
    pub fn measure(&self, recorded: bool, minimum: u64) -> StorageState {
        if !recorded {
            return StorageState::NotConfigured;
        }
        storage_state(&self.root, minimum)
    }

    /// The state moat acts on: what the last check saw, measured now
    /// before the first check.
    pub fn current(&self, recorded: bool, minimum: u64) -> StorageState {
        let seen = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        seen.unwrap_or_else(|| self.measure(recorded, minimum))
    }

    /// The state a recorded request acts on: the last check's (no system
    /// call per request), or measured when the last check saw no recorded
    /// app (one was just added).
    pub fn for_request(&self, minimum: u64) -> StorageState {
        match self.current(true, minimum) {
            StorageState::NotConfigured => storage_state(&self.root, minimum),
            s => s,
        }
    }

    /// The periodic check: measures, logs a change, and returns the state
    /// and whether it changed.
    pub fn check(&self, recorded: bool, minimum: u64) -> StorageState {
        let state = self.measure(recorded, minimum);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if *last != Some(state) {
            match state {
                StorageState::Available | StorageState::NotConfigured => {
                    tracing::info!(state = state.as_str(), "recording storage")
                }
                _ => {
                    tracing::warn!(state = state.as_str(), path = %self.root.display(), "recording storage")
                }
            }
            *last = Some(state);
        }
        state
    }
}

impl StorageState {
    /// Whether recorded sessions in progress must close now (cleanly,
    /// sealed) rather than be cut off when the disk fills.
    pub fn must_close_recordings(self) -> bool {
        matches!(
            self,
            StorageState::CriticallyLow | StorageState::OutOfStorage
        )
    }

    /// Whether recordings can be read back from this node.
    pub fn allows_playback(self) -> bool {
        matches!(self, StorageState::Available | StorageState::NotConfigured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let dir = tempfile::tempdir().unwrap();
        let m = StorageMonitor::new(dir.path().to_owned());
        assert_eq!(m.measure(false, 1), StorageState::NotConfigured);
        assert_eq!(m.measure(true, 1), StorageState::Available);
        assert_eq!(m.measure(true, u64::MAX), StorageState::CriticallyLow);
        assert!(StorageState::CriticallyLow.must_close_recordings());
        assert!(!StorageState::Low.must_close_recordings());
        assert!(!StorageState::Low.allows_playback());
        let gone = StorageMonitor::new(dir.path().join("missing"));
        assert_eq!(gone.measure(true, 1), StorageState::Unknown);
    }

    #[test]
    fn the_check_is_what_requests_act_on() {
        let dir = tempfile::tempdir().unwrap();
        let m = StorageMonitor::new(dir.path().to_owned());
        assert_eq!(m.check(true, u64::MAX), StorageState::CriticallyLow);
        // Plenty of room now, but requests act on what the check saw.
        assert_eq!(m.current(true, 1), StorageState::CriticallyLow);
        assert_eq!(m.for_request(1), StorageState::CriticallyLow);
        assert_eq!(m.check(false, 1), StorageState::NotConfigured);
        assert_eq!(m.for_request(1), StorageState::Available);
    }
}
