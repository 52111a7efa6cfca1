//! How answers are printed for people: aligned tables and short
//! summaries (`--json` prints the API's JSON instead).

use moat_admin::api::{
    AppDetail, AppSummary, AuditEntry, Certificate, CspExplain, RecordingSummary, Status,
};

pub fn csp(c: &CspExplain) -> String {
    let mut out = format!("{} of app {}:\n  {}\n\n", c.header, c.app, c.policy);
    let mut rows = Vec::new();
    for d in &c.directives {
        for s in &d.sources {
            let layer = match &s.inherited_from {
                Some(from) => format!("{} (via {from})", s.layer),
                None => s.layer.clone(),
            };
            rows.push(vec![
                d.directive.clone(),
                s.source.clone(),
                layer,
                s.approval.clone(),
            ]);
        }
    }
    out.push_str(&table(&["DIRECTIVE", "SOURCE", "LAYER", "APPROVAL"], rows));
    if !c.pending.is_empty() {
        out.push_str("\nRequested by the manifest, not applied until approved:\n");
        for p in &c.pending {
            out.push_str(&format!(
                "  {} {}\n    approve: {}\n",
                p.directive, p.source, p.approve_with
            ));
        }
    }
    if !c.refused.is_empty() {
        out.push_str("\nRequested, refused as dangerous (only allow_unsafe in the app's admin layer accepts them):\n");
        for r in &c.refused {
            out.push_str(&format!("  {} {}: {}\n", r.directive, r.source, r.reason));
        }
    }
    if !c.unrestricted.is_empty() {
        out.push_str(
            "\nRequested for directives the policy does not restrict (allowed already):\n",
        );
        for u in &c.unrestricted {
            out.push_str(&format!("  {} {}\n", u.directive, u.source));
        }
    }
    out
}

pub fn recordings(r: &[RecordingSummary]) -> String {
    table(
        &[
            "ID", "APP", "USER", "CLIENT", "STARTED", "STATE", "EVENTS", "BYTES",
        ],
        r.iter()
            .map(|x| {
                vec![
                    x.id.clone(),
                    x.app.clone(),
                    x.user.clone().unwrap_or_else(|| "-".into()),
                    x.client_ip.clone(),
                    x.started_at.clone(),
                    x.state.clone(),
                    x.events.to_string(),
                    x.bytes.to_string(),
                ]
            })
            .collect(),
    )
}

pub fn audit(entries: &[AuditEntry]) -> String {
    table(
        &["TIME", "ACTOR", "SOURCE", "ACTION", "TARGET"],
        entries
            .iter()
            .map(|e| {
                vec![
                    e.time.clone(),
                    e.actor.clone(),
                    e.source.clone(),
                    e.action.clone(),
                    e.target.clone(),
                ]
            })
            .collect(),
    )
}

pub fn status(s: &Status) -> String {
    let mut out = format!("moat {}, up {}\n", s.version, uptime(s.uptime_seconds));
    if let Some(r) = &s.recording_storage {
        out.push_str(&format!(
            "recording storage: {} ({}, {} free, minimum {})\n",
            r.state,
            r.path,
            r.available_bytes
                .map(moat_config_size)
                .unwrap_or_else(|| "unknown".into()),
            moat_config_size(r.minimum_available_capacity)
        ));
        out.push_str(&format!(
            "recordings: {} open, recorder queue {} events ({})\n",
            r.open_recordings,
            r.queued_events,
            moat_config_size(r.queued_bytes)
        ));
    }
    out.push('\n');
    out.push_str(&table(
        &["LISTENER", "ROLE"],
        s.listeners
            .iter()
            .map(|l| vec![l.address.clone(), l.role.clone()])
            .collect(),
    ));
    if !s.certificates.is_empty() {
        out.push('\n');
        out.push_str(&certificates(&s.certificates));
    }
    if let Some(si) = &s.sign_in {
        out.push('\n');
        out.push_str(&format!(
            "sign-in: {} live sessions, captcha {}\n",
            si.sessions,
            si.captcha.as_deref().unwrap_or("off")
        ));
        if !si.providers.is_empty() {
            out.push_str(&table(
                &["PROVIDER", "STATE"],
                si.providers
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            match (&p.ready, &p.error) {
                                (true, _) => "ready".to_owned(),
                                (false, Some(e)) => format!("unavailable: {e}"),
                                (false, None) => "discovering".to_owned(),
                            },
                        ]
                    })
                    .collect(),
            ));
        }
    }
    out.push('\n');
    out.push_str(&apps(&s.apps));
    out
}

pub fn certificates(certs: &[Certificate]) -> String {
    let mut out = table(
        &[
            "CERTIFICATE",
            "SOURCE",
            "NOT AFTER",
            "NEXT RENEWAL",
            "ISSUER",
        ],
        certs
            .iter()
            .map(|c| {
                let mut not_after = c
                    .not_after
                    .clone()
                    .unwrap_or_else(|| "(not obtained yet)".into());
                if c.expires_soon {
                    not_after.push_str(" (expires soon)");
                }
                vec![
                    c.names.join(", "),
                    c.source.clone(),
                    not_after,
                    c.next_renewal.clone().unwrap_or_else(|| "-".into()),
                    c.issuer.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect(),
    );
    for c in certs {
        if let Some(e) = &c.error {
            out.push_str(&format!(
                "certificate for {}: {e}{}\n",
                c.names.join(", "),
                if c.not_after.is_some() {
                    " (the certificate above still serves)"
                } else {
                    ""
                }
            ));
        }
    }
    out
}

pub fn apps(apps: &[AppSummary]) -> String {
    if apps.is_empty() {
        return "No apps yet: add one in the admin portal (https://HOST/_moat/portal/), with `moat app create`, or in the config file.\n".into();
    }
    table(
        &["APP", "MOUNT", "KIND", "TARGET", "DEFINED IN"],
        apps.iter()
            .map(|a| {
                vec![
                    a.name.clone(),
                    mount(a),
                    a.kind.clone(),
                    a.target.clone(),
                    a.defined_in.clone(),
                ]
            })
            .collect(),
    )
}

pub fn app(a: &AppDetail) -> String {
    let s = &a.summary;
    let rows = [
        ("name", s.name.clone()),
        ("mount", mount(s)),
        ("kind", s.kind.clone()),
        ("target", s.target.clone()),
        ("defined in", s.defined_in.clone()),
        ("auth", s.auth.clone()),
        ("identity jwt", a.identity_jwt.to_string()),
        ("preserve host", a.preserve_host.to_string()),
        ("strip path", a.strip_path.to_string()),
        ("h2c", a.h2c.to_string()),
        ("max body size", moat_config_size(a.max_body_size)),
        ("connect timeout", a.timeouts.connect.clone()),
        (
            "response header timeout",
            a.timeouts.response_header.clone(),
        ),
        ("idle timeout", a.timeouts.idle.clone()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

pub fn moat_config_size(n: u64) -> String {
    // The same notation as the config file.
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    units
        .iter()
        .find(|(_, m)| n != 0 && n % m == 0)
        .map(|(u, m)| format!("{}{u}", n / m))
        .unwrap_or_else(|| n.to_string())
}

pub fn mount(a: &AppSummary) -> String {
    match &a.host {
        Some(h) => format!("{h}{}", a.path),
        None => a.path.clone(),
    }
}

pub fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Left-aligned columns, two spaces apart.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB"],
            vec![
                vec!["long".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     yy\n");
    }

    #[test]
    fn sizes_and_uptimes() {
        assert_eq!(moat_config_size(10 << 20), "10MiB");
        assert_eq!(moat_config_size(1000), "1000");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(3725), "1h 2m");
    }
}
