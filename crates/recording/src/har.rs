//! Export as HAR 1.2 (HTTP Archive), which browser developer tools import.
//! One entry per recorded exchange; timings from the recorded events.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{Event, Metadata, Recorded};

#[derive(Default)]
struct Exchange {
    started_us: u64,
    method: String,
    url: String,
    version: String,
    req_headers: Vec<(String, String)>,
    req_body: Vec<u8>,
    req_len: u64,
    head_us: Option<u64>,
    status: u16,
    resp_headers: Vec<(String, String)>,
    resp_body: Vec<u8>,
    resp_len: u64,
    end_us: Option<u64>,
    /// Chrome's `_webSocketMessages` entries.
    ws: Vec<Value>,
}

fn header_list(h: &[(String, String)]) -> Value {
    Value::Array(
        h.iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
    )
}

fn find<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Milliseconds since the Unix epoch → ISO 8601 in UTC.
fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

pub fn to_har(meta: &Metadata, events: &[Recorded]) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut tls: BTreeMap<u64, bool> = BTreeMap::new();
    let mut ex: BTreeMap<u64, Exchange> = BTreeMap::new();
    for r in events {
        match &r.event {
            Event::ConnOpen { conn, tls: t, .. } => {
                tls.insert(*conn, *t);
            }
            Event::RequestHead {
                conn,
                req,
                method,
                uri,
                version,
                headers,
            } => {
                let scheme = if tls.get(conn).copied().unwrap_or(true) {
                    "https"
                } else {
                    "http"
                };
                let host = find(headers, "host").unwrap_or("localhost");
                let url = if uri.starts_with("http") {
                    uri.clone()
                } else {
                    format!("{scheme}://{host}{uri}")
                };
                ex.insert(
                    *req,
                    Exchange {
                        started_us: r.t_us,
                        method: method.clone(),
                        url,
                        version: version.clone(),
                        req_headers: headers.clone(),
                        ..Default::default()
                    },
                );
            }
            Event::RequestBody { req, data, len, .. } => {
                if let Some(e) = ex.get_mut(req) {
                    e.req_body.extend(b64.decode(data).unwrap_or_default());
                    e.req_len += len;
                }
            }
            Event::ResponseHead {
                req,
                status,
                headers,
                ..
            } => {
                if let Some(e) = ex.get_mut(req) {
                    e.head_us = Some(r.t_us);
                    e.status = *status;
                    e.resp_headers = headers.clone();
                }
            }
            Event::ResponseBody { req, data, len, .. } => {
                if let Some(e) = ex.get_mut(req) {
                    e.resp_body.extend(b64.decode(data).unwrap_or_default());
                    e.resp_len += len;
                }
            }
            Event::WsMessage {
                req,
                dir,
                opcode,
                data,
                ..
            } => {
                if let Some(e) = ex.get_mut(req) {
                    let code = match opcode.as_str() {
                        "text" => 1,
                        "binary" => 2,
                        "close" => 8,
                        "ping" => 9,
                        "pong" => 10,
                        _ => 0,
                    };
                    let bytes = b64.decode(data).unwrap_or_default();
                    let text = match (code, std::str::from_utf8(&bytes)) {
                        (1, Ok(t)) => t.to_owned(),
                        _ => b64.encode(&bytes),
                    };
                    e.ws.push(json!({
                        "type": if dir == "client" { "send" } else { "receive" },
                        "time": (meta.started_at_ms as f64 + r.t_us as f64 / 1000.0) / 1000.0,
                        "opcode": code,
                        "data": text,
                    }));
                }
            }
            Event::ExchangeEnd { req, .. } => {
                if let Some(e) = ex.get_mut(req) {
                    e.end_us = Some(r.t_us);
                }
            }
            _ => {}
        }
    }
    let entries: Vec<Value> = ex
        .values()
        .map(|e| {
            let wait = e.head_us.map(|h| (h - e.started_us) as f64 / 1000.0).unwrap_or(0.0);
            let receive = match (e.head_us, e.end_us) {
                (Some(h), Some(end)) => end.saturating_sub(h) as f64 / 1000.0,
                _ => 0.0,
            };
            let mime = find(&e.resp_headers, "content-type").unwrap_or("application/octet-stream");
            let content = match std::str::from_utf8(&e.resp_body) {
                Ok(text) => json!({"size": e.resp_len, "mimeType": mime, "text": text}),
                Err(_) => json!({"size": e.resp_len, "mimeType": mime, "text": b64.encode(&e.resp_body), "encoding": "base64"}),
            };
            let query: Vec<Value> = e
                .url
                .split_once('?')
                .map(|(_, q)| {
                    q.split('&')
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (n, v) = p.split_once('=').unwrap_or((p, ""));
                            json!({"name": n, "value": v})
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut request = json!({
                "method": e.method,
                "url": e.url,
                "httpVersion": e.version,
                "cookies": [],
                "headers": header_list(&e.req_headers),
                "queryString": query,
                "headersSize": -1,
                "bodySize": e.req_len,
            });
            if e.req_len > 0 {
                request["postData"] = json!({
                    "mimeType": find(&e.req_headers, "content-type").unwrap_or("application/octet-stream"),
                    "text": String::from_utf8_lossy(&e.req_body),
                });
            }
            let mut entry = json!({
                "startedDateTime": iso(meta.started_at_ms + (e.started_us / 1000) as i64),
                "time": wait + receive,
                "request": request,
                "response": {
                    "status": e.status,
                    "statusText": "",
                    "httpVersion": e.version,
                    "cookies": [],
                    "headers": header_list(&e.resp_headers),
                    "content": content,
                    "redirectURL": find(&e.resp_headers, "location").unwrap_or(""),
                    "headersSize": -1,
                    "bodySize": e.resp_len,
                },
                "cache": {},
                "timings": {"send": 0, "wait": wait, "receive": receive},
                "comment": format!("moat recording {} (app {})", meta.id, meta.app),
            });
            // WebSocket messages in the field Chrome's tools read and write
            // (HAR 1.2 allows custom fields starting with an underscore).
            if !e.ws.is_empty() {
                entry["_resourceType"] = json!("websocket");
                entry["_webSocketMessages"] = Value::Array(e.ws.clone());
            }
            entry
        })
        .collect();
    json!({"log": {
        "version": "1.2",
        "creator": {"name": "moat", "version": meta.moat_version},
        "entries": entries,
    }})
}
