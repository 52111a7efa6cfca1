//! Validates `[server]`: listeners, workers, connection caps, timeouts and
//! request size limits.

use std::time::Duration;

use super::checker::Checker;
use crate::model::Server;
use crate::raw::RawServer;

/// Keys are relative to `server.`.
pub(super) fn validate(c: &mut Checker<'_>, s: &RawServer) -> Server {
    let https = c.listen("https", &s.https);
    let http = c.listen("http", &s.http);
    let workers = match s.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n if (1..=1024).contains(&n) => n as usize,
        n => {
            c.problem(
                "workers",
                format!("{n} is out of range"),
                "use 0 (one per CPU core) or a number from 1 to 1024",
            );
            1
        }
    };
    if s.max_connections < 1 {
        c.problem(
            "max_connections",
            "must be at least 1",
            "set a positive number, e.g. 10000",
        );
    }
    let server = Server {
        https,
        http,
        admin_socket: (!s.admin_socket.is_empty()).then(|| c.path(&s.admin_socket)),
        workers,
        max_connections: s.max_connections.max(1) as usize,
        header_read_timeout: c.duration(
            "header_read_timeout",
            &s.header_read_timeout,
            Duration::from_millis(100),
        ),
        tls_handshake_timeout: c.duration(
            "tls_handshake_timeout",
            &s.tls_handshake_timeout,
            Duration::from_millis(100),
        ),
        max_header_size: c.size("max_header_size", &s.max_header_size, 1024) as usize,
        max_uri_length: c.size("max_uri_length", &s.max_uri_length, 256) as usize,
        shutdown_timeout: c.duration("shutdown_timeout", &s.shutdown_timeout, Duration::ZERO),
        http2: s.http2,
        keepalive_timeout: c.duration(
            "keepalive_timeout",
            &s.keepalive_timeout,
            Duration::from_millis(100),
        ),
        min_body_rate: c.size("min_body_rate", &s.min_body_rate, 0),
        http2_max_concurrent_streams: c.count(
            "http2_max_concurrent_streams",
            s.http2_max_concurrent_streams,
            1,
            10_000,
        ) as u32,
        redirect_max_connections: c.count(
            "redirect_max_connections",
            s.redirect_max_connections,
            1,
            1_000_000,
        ) as usize,
        redirect_max_connections_per_client: c.count(
            "redirect_max_connections_per_client",
            s.redirect_max_connections_per_client,
            1,
            1_000_000,
        ) as usize,
    };
    if server.max_header_size > 1 << 20 {
        c.problem(
            "max_header_size",
            "must be at most 1MiB",
            "lower the value; 16KiB suits nearly every app",
        );
    }
    server
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Human;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn defaults_are_valid() {
        let (s, problems) = check(|c| validate(c, &RawServer::default()));
        assert_eq!(problems, []);
        assert_eq!(s.https.unwrap().to_string(), "127.0.0.1:8443");
        assert_eq!(s.max_header_size, 16 << 10);
        assert!(s.workers >= 1);
        assert_eq!(s.admin_socket, None);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawServer {
            https: "nope".into(),
            http: String::new(),
            admin_socket: "moat.sock".into(),
            workers: 5000,
            max_connections: 0,
            header_read_timeout: Human::Str("1ms".into()),
            max_header_size: Human::Str("2MiB".into()),
            http2_max_concurrent_streams: 0,
            ..RawServer::default()
        };
        let (s, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "https", "\"nope\" is not an address:port");
        assert_problem(&problems, "workers", "5000 is out of range");
        assert_problem(&problems, "max_connections", "must be at least 1");
        assert_problem(&problems, "header_read_timeout", "must be at least 100ms");
        assert_problem(&problems, "max_header_size", "must be at most 1MiB");
        assert_problem(
            &problems,
            "http2_max_concurrent_streams",
            "0 is out of range",
        );
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert_eq!((s.https, s.http), (None, None));
        assert_eq!(
            s.admin_socket.as_deref(),
            Some(std::path::Path::new("/base/moat.sock"))
        );
        assert_eq!(s.max_connections, 1);
    }
}
