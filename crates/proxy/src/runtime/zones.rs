//! Rate-limit zones' state: one limiter per zone, kept across config
//! reloads (a zone whose settings did not change keeps its counts, so a
//! reload does not hand every client a fresh budget), and the zones an
//! app applies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use moat_config::LimitKey;
use moat_policy::glob::PathPattern;
use moat_policy::rate_limit::{Limiter, Zone};

pub type SharedLimiter = Arc<Mutex<Limiter<String>>>;

/// The limiters of every zone, by name. A zone whose settings did not
/// change keeps its state across reloads.
#[derive(Default)]
pub struct ZoneRegistry {
    zones: Mutex<HashMap<String, (Zone, SharedLimiter)>>,
}

impl ZoneRegistry {
    pub fn limiter(&self, name: &str, zone: Zone) -> SharedLimiter {
        let mut zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        match zones.get(name) {
            Some((z, l)) if *z == zone => l.clone(),
            _ => {
                let l = Arc::new(Mutex::new(Limiter::new(zone)));
                zones.insert(name.to_owned(), (zone, l.clone()));
                l
            }
        }
    }

    /// Forgets keys whose budget has refilled (run periodically).
    pub fn sweep(&self) {
        let zones: Vec<SharedLimiter> = {
            let z = self.zones.lock().unwrap_or_else(|e| e.into_inner());
            z.values().map(|(_, l)| l.clone()).collect()
        };
        let now = Instant::now();
        for l in zones {
            l.lock().unwrap_or_else(|e| e.into_inner()).sweep(now);
        }
    }
}

/// A zone applied to an app.
pub struct AppZone {
    pub name: String,
    pub key: LimitKey,
    pub path: Option<PathPattern>,
    pub limiter: SharedLimiter,
}
