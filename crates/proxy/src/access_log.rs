//! The access log: one line per request, JSON or Common Log Format.
//!
//! Lines are buffered in memory and written by a thread of their own, so a
//! slow disk never stalls a request; if a stalled disk lets the buffer grow
//! past its cap, lines are dropped and counted, and the count is reported in
//! the operational log.

use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use moat_config::{AccessLogFormat, AccessLogTarget};
use serde::Serialize;

/// What is logged about one request.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(serialize_with = "ser_time")]
    pub time: SystemTime,
    pub client_ip: IpAddr,
    pub app: Option<String>,
    pub method: String,
    /// Path only: query strings often carry tokens and are left out.
    pub path: String,
    pub proto: &'static str,
    pub host: Option<String>,
    pub status: u16,
    pub bytes: u64,
    pub duration_ms: f64,
    pub user_agent: Option<String>,
    pub referer: Option<String>,
}

fn ser_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

#[derive(Clone)]
pub struct AccessLog {
    inner: Option<Arc<Inner>>,
}

/// Lines are appended to `pending` under a short lock; a writer thread
/// swaps the buffer out and writes it every [`FLUSH_EVERY`], or sooner when
/// it passes [`WAKE_AT`]. A request never waits on the disk and never wakes
/// another thread, which a channel with one message per line would.
struct Inner {
    pending: Mutex<Vec<u8>>,
    sink: Mutex<Box<dyn Write + Send>>,
    wake: Condvar,
    format: AccessLogFormat,
    dropped: AtomicU64,
}

const FLUSH_EVERY: Duration = Duration::from_millis(100);
const WAKE_AT: usize = 256 * 1024;
/// Past this much unwritten log (a stalled disk), lines are dropped and
/// counted rather than held in memory.
const DROP_AT: usize = 16 << 20;

impl AccessLog {
    pub fn off() -> Self {
        AccessLog { inner: None }
    }

    /// Opens the target and starts the writer thread.
    pub fn start(target: &AccessLogTarget, format: AccessLogFormat) -> std::io::Result<Self> {
        let sink: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok(AccessLog::off()),
            AccessLogTarget::Stdout => Box::new(std::io::stdout()),
            AccessLogTarget::Stderr => Box::new(std::io::stderr()),
            AccessLogTarget::File(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
        };
        let inner = Arc::new(Inner {
            pending: Mutex::new(Vec::with_capacity(WAKE_AT)),
            sink: Mutex::new(sink),
            wake: Condvar::new(),
            format,
            dropped: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("moat-access-log".into())
            .spawn(move || {
                let mut spare = Vec::with_capacity(WAKE_AT);
                // Ends once every AccessLog handle is gone, after a last write.
                while let Some(inner) = weak.upgrade() {
                    {
                        let guard = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
                        let (mut guard, _) = inner
                            .wake
                            .wait_timeout_while(guard, FLUSH_EVERY, |p| p.len() < WAKE_AT)
                            .unwrap_or_else(|e| e.into_inner());
                        std::mem::swap(&mut *guard, &mut spare);
                    }
                    inner.write(&mut spare);
                    drop(inner);
                }
            })?;
        Ok(AccessLog { inner: Some(inner) })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    pub fn log(&self, entry: &Entry) {
        let Some(inner) = &self.inner else { return };
        let mut pending = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() > DROP_AT {
            drop(pending);
            let n = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "access log cannot keep up; lines dropped");
            }
            return;
        }
        match inner.format {
            AccessLogFormat::Json => {
                let _ = serde_json::to_writer(&mut *pending, entry);
            }
            AccessLogFormat::Common => pending.extend_from_slice(common(entry).as_bytes()),
        }
        pending.push(b'\n');
        if pending.len() >= WAKE_AT {
            inner.wake.notify_one();
        }
    }

    /// Writes what is pending now (at shutdown).
    pub fn flush(&self) {
        if let Some(inner) = &self.inner {
            let mut taken =
                std::mem::take(&mut *inner.pending.lock().unwrap_or_else(|e| e.into_inner()));
            inner.write(&mut taken);
        }
    }
}

impl Inner {
    /// Writes and clears `buf`. The sink lock keeps lines of two writers
    /// (the thread and a shutdown flush) from interleaving.
    fn write(&self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = sink.write_all(buf).and_then(|_| sink.flush()) {
            tracing::error!("writing the access log failed: {e}");
        }
        buf.clear();
    }
}

/// Common Log Format, then the app and the duration in milliseconds.
fn common(e: &Entry) -> String {
    let (y, mo, d, h, mi, s, _) = civil(e.time);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let bytes = if e.bytes == 0 {
        "-".to_owned()
    } else {
        e.bytes.to_string()
    };
    format!(
        "{} - - [{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000] \"{} {} {}\" {} {} app={} {:.3}ms",
        e.client_ip,
        MONTHS[(mo - 1) as usize],
        e.method,
        e.path.replace('"', "%22"),
        e.proto,
        e.status,
        bytes,
        e.app.as_deref().unwrap_or("-"),
        e.duration_ms,
    )
}

/// `2026-11-23T15:04:05.123Z`
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// UTC calendar fields from a time (days-from-civil inverse, after Howard
/// Hinnant's public-domain algorithm).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (year, month, day) = moat_policy::units::civil_date(days);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
        d.subsec_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_446_245_123);
        assert_eq!(rfc3339(t), "2026-11-23T15:04:05.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
    }

    #[test]
    fn common_format() {
        let e = Entry {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_446_245),
            client_ip: "192.0.2.1".parse().unwrap(),
            app: Some("grafana".into()),
            method: "GET".into(),
            path: "/a\"b".into(),
            proto: "HTTP/1.1",
            host: None,
            status: 200,
            bytes: 0,
            duration_ms: 1.5,
            user_agent: None,
            referer: None,
        };
        assert_eq!(
            common(&e),
            "192.0.2.1 - - [23/Nov/2026:15:04:05 +0000] \"GET /a%22b HTTP/1.1\" 200 - app=grafana 1.500ms"
        );
    }
}
