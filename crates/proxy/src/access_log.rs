//! The access log: one line per request, JSON or Common Log Format.
//!
//! Lines are handed to a writer task over a bounded channel so a slow disk
//! never stalls a request; if the channel is full the line is dropped and
//! counted, and the count is reported in the operational log.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use moat_config::{AccessLogFormat, AccessLogTarget};
use serde::Serialize;
use tokio::sync::mpsc;

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

struct Inner {
    tx: mpsc::Sender<Vec<u8>>,
    format: AccessLogFormat,
    dropped: AtomicU64,
}

impl AccessLog {
    pub fn off() -> Self {
        AccessLog { inner: None }
    }

    /// Opens the target and starts the writer task.
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
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(65_536);
        // Writing is blocking I/O; it runs on a blocking thread and flushes
        // whenever the queue is momentarily empty.
        tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, sink);
            while let Some(line) = rx.blocking_recv() {
                let _ = out.write_all(&line);
                while let Ok(line) = rx.try_recv() {
                    let _ = out.write_all(&line);
                }
                let _ = out.flush();
            }
            let _ = out.flush();
        });
        Ok(AccessLog {
            inner: Some(Arc::new(Inner {
                tx,
                format,
                dropped: AtomicU64::new(0),
            })),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    pub fn log(&self, entry: &Entry) {
        let Some(inner) = &self.inner else { return };
        let mut line = match inner.format {
            AccessLogFormat::Json => serde_json::to_vec(entry).unwrap_or_default(),
            AccessLogFormat::Common => common(entry).into_bytes(),
        };
        line.push(b'\n');
        if inner.tx.try_send(line).is_err() {
            let n = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "access log cannot keep up; lines dropped");
            }
        }
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
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
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
