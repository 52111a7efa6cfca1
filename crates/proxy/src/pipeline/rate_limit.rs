//! Stage: rate limits (nginx `limit_req` semantics, see
//! `moat_policy::rate_limit`), keyed on the client address resolved
//! through the trusted proxies, the signed-in user, or a header.
//!
//! Zones keyed by user run after the auth stage (there is no user before
//! it); the others run before anything else is done for the request. A
//! zone's state lives in a [`ZoneRegistry`] that outlives config reloads,
//! so a reload does not hand every client a fresh budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, StatusCode, header};
use moat_config::LimitKey;
use moat_policy::glob::PathPattern;
use moat_policy::rate_limit::{Decision, Limiter, Zone};

use crate::body::Body;
use crate::pipeline::RequestCtx;
use crate::runtime::{AppRuntime, Runtime};

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

/// Which zones a stage call applies: those keyed by user run after auth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    BeforeAuth,
    AfterAuth,
}

pub async fn check<B>(
    req: &Request<B>,
    ctx: &RequestCtx,
    app: &AppRuntime,
    runtime: &Runtime,
    phase: Phase,
) -> Result<(), Response<Body>> {
    if app.rate_limits.is_empty()
        || runtime
            .config
            .rate_limit
            .exempt
            .iter()
            .any(|n| n.contains(&ctx.client.ip))
    {
        return Ok(());
    }
    let now = Instant::now();
    let mut delay = Duration::ZERO;
    for z in &app.rate_limits {
        if (z.key == LimitKey::User) != (phase == Phase::AfterAuth) {
            continue;
        }
        // A limit applies to any spelling a server might serve as its
        // path, and to either reading of an encoded slash.
        if z.path.as_ref().is_some_and(|p| {
            !p.matches_loosely(req.uri().path())
                && !ctx
                    .decoded_path
                    .as_deref()
                    .is_some_and(|d| p.matches_loosely(d))
        }) {
            continue;
        }
        let key = match &z.key {
            LimitKey::ClientIp => ctx.client.ip.to_string(),
            LimitKey::User => match &ctx.user {
                Some(u) => format!("user:{u}"),
                None => format!("ip:{}", ctx.client.ip),
            },
            // A request without the header is not counted, as in nginx.
            LimitKey::Header(h) => match req.headers().get(h) {
                Some(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
                None => continue,
            },
        };
        let decision = z
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(&key, now);
        match decision {
            Decision::Allow => {}
            Decision::Delay(d) => delay = delay.max(d),
            Decision::Reject { retry_after } => {
                tracing::info!(app = app.name, zone = z.name, client = %ctx.client.ip, "rate limit reached");
                return Err(too_many(retry_after));
            }
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(())
}

fn too_many(retry_after: Duration) -> Response<Body> {
    let secs = retry_after.as_millis().div_ceil(1000).max(1) as u64;
    let mut resp = crate::error::error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests. Slow down and try again shortly.",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}
