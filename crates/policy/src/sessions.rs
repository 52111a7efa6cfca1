//! Signed-in sessions: which user a session id belongs to, and when it ends.
//!
//! A session ends `idle` after its last use or `absolute` after sign-in,
//! whichever comes first, or when removed (sign-out). The clock and the
//! random ids are passed in, so expiry is tested without sleeping. Memory
//! is bounded: at `capacity`, expired sessions are dropped first, then the
//! least recently used.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::access::{Identity, Source};

/// A session id: 32 random bytes from the caller's generator.
pub type SessionId = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub idle: Duration,
    pub absolute: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub identity: Identity,
    pub created: Instant,
    pub last_seen: Instant,
    /// The `last_seen` last handed to [`SessionTable::unflushed`].
    flushed: Instant,
}

impl Session {
    fn expired(&self, t: Timeouts, now: Instant) -> bool {
        now.saturating_duration_since(self.last_seen) >= t.idle
            || now.saturating_duration_since(self.created) >= t.absolute
    }
}

#[derive(Debug)]
pub struct SessionTable {
    timeouts: Timeouts,
    capacity: usize,
    sessions: HashMap<SessionId, Session>,
}

impl SessionTable {
    pub fn new(timeouts: Timeouts, capacity: usize) -> Self {
        SessionTable {
            timeouts,
            capacity: capacity.max(1),
            sessions: HashMap::new(),
        }
    }

    /// New timeouts apply to existing sessions too (a config reload).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// Whether `id` names a session (live or not yet swept).
    pub fn contains(&self, id: &SessionId) -> bool {
        self.sessions.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Starts a session for `identity` under `id`.
    pub fn insert(&mut self, id: SessionId, identity: Identity, now: Instant) {
        self.restore(id, identity, now, now, now);
    }

    /// Replaces a live session's identity (a provider's refresh brought
    /// new claims); its times stay. Returns whether it was live.
    pub fn update(&mut self, id: &SessionId, identity: Identity) -> bool {
        match self.sessions.get_mut(id) {
            Some(s) => {
                s.identity = identity;
                true
            }
            None => false,
        }
    }

    /// Puts back a session kept elsewhere (a restart), with the times it
    /// had; one already expired at `now` is not put back. Returns whether
    /// it was.
    pub fn restore(
        &mut self,
        id: SessionId,
        identity: Identity,
        created: Instant,
        last_seen: Instant,
        now: Instant,
    ) -> bool {
        let s = Session {
            identity,
            created,
            last_seen,
            flushed: last_seen,
        };
        if s.expired(self.timeouts, now) {
            return false;
        }
        if self.sessions.len() >= self.capacity && !self.sessions.contains_key(&id) {
            self.make_room(now);
        }
        self.sessions.insert(id, s);
        true
    }

    /// Sessions used since the last call, with when: for keeping
    /// `last_seen` where a restart finds it.
    pub fn unflushed(&mut self) -> Vec<(SessionId, Instant)> {
        let mut out = Vec::new();
        for (id, s) in self.sessions.iter_mut() {
            if s.last_seen > s.flushed {
                s.flushed = s.last_seen;
                out.push((*id, s.last_seen));
            }
        }
        out
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The identity of a live session, marking it used; an expired session
    /// is removed and `None` returned.
    pub fn touch(&mut self, id: &SessionId, now: Instant) -> Option<&Session> {
        let timeouts = self.timeouts;
        if self.sessions.get(id)?.expired(timeouts, now) {
            self.sessions.remove(id);
            return None;
        }
        let s = self.sessions.get_mut(id)?;
        s.last_seen = now;
        Some(s)
    }

    /// Ends a session (sign-out); returns it if it existed.
    pub fn remove(&mut self, id: &SessionId) -> Option<Session> {
        self.sessions.remove(id)
    }

    /// Ends every session of the system account (its password changed);
    /// those signed in through a provider stay.
    pub fn clear_system(&mut self) {
        self.sessions
            .retain(|_, s| s.identity.source != Source::System);
    }

    /// Drops expired sessions; returns how many.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let before = self.sessions.len();
        let t = self.timeouts;
        self.sessions.retain(|_, s| !s.expired(t, now));
        before - self.sessions.len()
    }

    fn make_room(&mut self, now: Instant) {
        if self.sweep(now) > 0 {
            return;
        }
        if let Some(oldest) = self
            .sessions
            .iter()
            .min_by_key(|(_, s)| s.last_seen)
            .map(|(id, _)| *id)
        {
            self.sessions.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        idle: Duration::from_secs(60),
        absolute: Duration::from_secs(300),
    };

    fn id(n: u8) -> SessionId {
        [n; 32]
    }

    fn who(u: &str) -> Identity {
        Identity::system(u)
    }

    fn user(s: Option<&Session>) -> Option<&str> {
        s.map(|s| s.identity.user.as_str())
    }

    #[test]
    fn restored_sessions_keep_their_times_and_report_use() {
        let t0 = Instant::now();
        let mut s = SessionTable::new(T, 10);
        let now = t0 + Duration::from_secs(200);
        // Created 200 s ago, last used 30 s ago: still live.
        assert!(s.restore(id(1), who("a"), t0, now - Duration::from_secs(30), now));
        // Idle past 60 s: not put back.
        assert!(!s.restore(id(2), who("b"), t0, now - Duration::from_secs(61), now));
        assert_eq!(s.len(), 1);
        assert!(s.unflushed().is_empty(), "nothing used since the restore");
        assert_eq!(user(s.touch(&id(1), now)), Some("a"));
        assert_eq!(s.unflushed(), vec![(id(1), now)]);
        assert!(s.unflushed().is_empty());
        // The absolute timeout counts from the original sign-in.
        assert_eq!(user(s.touch(&id(1), t0 + Duration::from_secs(300))), None);
    }

    #[test]
    fn idle_timeout_ends_an_unused_session() {
        let t0 = Instant::now();
        let mut s = SessionTable::new(T, 10);
        s.insert(id(1), who("alice"), t0);
        assert_eq!(
            user(s.touch(&id(1), t0 + Duration::from_secs(59))),
            Some("alice")
        );
        // Use moved the idle deadline.
        assert_eq!(
            user(s.touch(&id(1), t0 + Duration::from_secs(118))),
            Some("alice")
        );
        assert_eq!(user(s.touch(&id(1), t0 + Duration::from_secs(178))), None);
        assert!(s.is_empty(), "an expired session is forgotten");
    }

    #[test]
    fn absolute_timeout_ends_even_an_active_session() {
        let t0 = Instant::now();
        let mut s = SessionTable::new(T, 10);
        s.insert(id(1), who("alice"), t0);
        for minute in 1..5 {
            assert!(
                s.touch(&id(1), t0 + Duration::from_secs(minute * 59))
                    .is_some()
            );
        }
        assert_eq!(user(s.touch(&id(1), t0 + Duration::from_secs(300))), None);
    }

    #[test]
    fn a_password_change_ends_only_system_sessions() {
        let t0 = Instant::now();
        let mut s = SessionTable::new(T, 10);
        s.insert(id(1), who("admin"), t0);
        let mut alice = who("alice");
        alice.source = Source::Oidc("corp".into());
        s.insert(id(2), alice.clone(), t0);
        s.clear_system();
        assert_eq!(user(s.touch(&id(1), t0)), None);
        assert_eq!(user(s.touch(&id(2), t0)), Some("alice"));
        alice.groups = vec!["eng".into()];
        assert!(s.update(&id(2), alice.clone()));
        assert_eq!(s.touch(&id(2), t0).unwrap().identity, alice);
        assert!(!s.update(&id(1), alice));
    }

    #[test]
    fn remove_and_unknown_ids() {
        let t0 = Instant::now();
        let mut s = SessionTable::new(T, 10);
        s.insert(id(1), who("alice"), t0);
        assert_eq!(user(s.touch(&id(2), t0)), None);
        assert!(s.remove(&id(1)).is_some());
        assert_eq!(user(s.touch(&id(1), t0)), None);
    }

    #[test]
    fn capacity_drops_expired_then_least_recently_used() {
        let t0 = Instant::now();
        let mut s = SessionTable::new(T, 2);
        s.insert(id(1), who("a"), t0);
        s.insert(id(2), who("b"), t0 + Duration::from_secs(1));
        s.touch(&id(1), t0 + Duration::from_secs(2));
        s.insert(id(3), who("c"), t0 + Duration::from_secs(3));
        assert_eq!(s.len(), 2);
        assert!(
            s.touch(&id(2), t0 + Duration::from_secs(3)).is_none(),
            "LRU dropped"
        );
        assert!(s.touch(&id(1), t0 + Duration::from_secs(3)).is_some());
        // Far later both have expired; a new one sweeps them.
        s.insert(id(4), who("d"), t0 + Duration::from_secs(1000));
        assert_eq!(s.len(), 1);
    }
}
