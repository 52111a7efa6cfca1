//! Stage: client certificates. Runs right after routing, for apps with
//! `[apps.client_certs]`: the app's CA judges the certificate the
//! connection presented (`tls::client_auth`), and the request goes on, or
//! gets a 403 page that says what is wrong and what to do. With
//! `auth = "cert"` the certificate's holder is the request's user.
//!
//! `mode = "optional"`: a request without a certificate goes on (the app's
//! sign-in still applies); a certificate that is presented must be valid.
//! A request on a connection whose handshake was not asked for a
//! certificate (HTTP/2 reused across hosts) gets 421, so the browser
//! makes a connection for this host.

use http::StatusCode;
use moat_config::{AppAuth, ClientCertMode};
use rustls::pki_types::UnixTime;

use crate::error::Rejection;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::AppRuntime;
use crate::tls::client_auth::Verdict;

pub fn check(ctx: &mut RequestCtx, app: &AppRuntime, now: UnixTime) -> Step {
    let Some(policy) = &app.client_certs else {
        return Ok(Flow::Continue);
    };
    let verdict = ctx.client_cert.as_ref().map(|c| c.verdict(&policy.ca, now));
    // An HTTP/2 connection set up for another host (browsers reuse one for
    // every name its certificate covers) was never asked for a
    // certificate, or asked for another app's: 421 makes the browser open
    // one for this host, whose handshake asks (RFC 9113 §9.1.2).
    let misdirected = match &ctx.client_cert_asked {
        None => true,
        Some(asked) => policy
            .host
            .as_deref()
            .is_some_and(|h| asked.sni.as_deref() != Some(h)),
    };
    if misdirected {
        return Err(Rejection::client(
            StatusCode::MISDIRECTED_REQUEST,
            "This connection was made for another site. Your browser retries on its own; if this page stays, reload it.",
        ));
    }
    let refuse = |why: &'static str| Err(Rejection::client(StatusCode::FORBIDDEN, why));
    match verdict {
        Some(Verdict::Valid { user }) => {
            if app.auth == AppAuth::Cert {
                ctx.user = Some(user);
                ctx.source = Some("cert".into());
            }
            Ok(Flow::Continue)
        }
        None if policy.mode == ClientCertMode::Optional && app.auth != AppAuth::Cert => {
            Ok(Flow::Continue)
        }
        None => refuse(
            "This app needs a client certificate, and your browser sent none. Install the certificate your administrator gave you (in the browser's or the system's certificate settings), then open the page again; when the browser asks, choose that certificate.",
        ),
        Some(Verdict::Expired) => refuse(
            "Your client certificate has expired. Ask your administrator for a new one, install it, and try again.",
        ),
        Some(Verdict::NotYetValid) => refuse(
            "Your client certificate is not valid yet. Check your computer's clock, or ask your administrator.",
        ),
        Some(Verdict::Revoked) => refuse(
            "Your client certificate has been revoked. Ask your administrator for a new one.",
        ),
        Some(Verdict::UnknownIssuer) => refuse(
            "Your client certificate was not issued by a CA this app trusts. Choose the certificate your administrator gave you for this app (restart the browser to be asked again).",
        ),
        Some(Verdict::RevocationUnknown(why)) => {
            crate::log_limit::warn_every(
                "client-cert-crl",
                &app.name,
                std::time::Duration::from_secs(60),
                |suppressed| {
                    tracing::warn!(
                        app = app.name,
                        suppressed,
                        "client certificates refused: {why}"
                    )
                },
            );
            refuse(
                "moat cannot check whether your client certificate has been revoked. Tell your administrator; nothing is wrong on your side.",
            )
        }
        Some(Verdict::Invalid(why)) => {
            tracing::debug!(app = app.name, "client certificate refused: {why}");
            refuse(
                "Your client certificate cannot be used for this app. Ask your administrator for one made for it.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::{app, ctx, one_app};
    use crate::tls::client_auth::{Asked, PeerCert};
    use std::sync::Arc;

    /// A CA file, and a client certificate it issued (DER).
    fn ca_and_client(
        dir: &std::path::Path,
    ) -> (
        std::path::PathBuf,
        rustls::pki_types::CertificateDer<'static>,
    ) {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca = rcgen::CertificateParams::default();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca_cert.pem()).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut leaf = rcgen::CertificateParams::default();
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "carol");
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = leaf
            .signed_by(&key, &rcgen::Issuer::from_params(&ca, &ca_key))
            .unwrap();
        (path, cert.der().clone())
    }

    fn runtime(
        dir: &std::path::Path,
        mode: &str,
        auth: &str,
    ) -> (
        crate::runtime::Runtime,
        rustls::pki_types::CertificateDer<'static>,
    ) {
        let (ca, client) = ca_and_client(dir);
        let rt = one_app(
            "",
            &format!(
                "auth = \"{auth}\"\n[apps.client_certs]\nca = {:?}\nmode = \"{mode}\"\n",
                ca.display().to_string()
            ),
        );
        (rt, client)
    }

    #[test]
    fn a_valid_certificate_names_the_user_for_cert_auth() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, client) = runtime(dir.path(), "require", "cert");
        let a = app(&rt, "app");
        let req = http::Request::get("/").body(()).unwrap();
        let mut c = ctx(&req, "127.0.0.1", true, Some(a.clone()));
        c.client_cert = Some(Arc::new(PeerCert::new(vec![client])));
        c.client_cert_asked = Some(Asked { sni: None });
        assert!(matches!(
            check(&mut c, &a, UnixTime::now()),
            Ok(Flow::Continue)
        ));
        assert_eq!(c.user.as_deref(), Some("carol"));
    }

    #[test]
    fn no_certificate_is_refused_or_sent_to_a_new_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, _) = runtime(dir.path(), "require", "system");
        let a = app(&rt, "app");
        let req = http::Request::get("/").body(()).unwrap();
        let mut c = ctx(&req, "127.0.0.1", true, Some(a.clone()));
        // The handshake was asked and sent none: 403.
        c.client_cert_asked = Some(Asked { sni: None });
        let e = check(&mut c, &a, UnixTime::now()).err().unwrap();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        // A connection made for another host was never asked: 421.
        c.client_cert_asked = None;
        let e = check(&mut c, &a, UnixTime::now()).err().unwrap();
        assert_eq!(e.status, StatusCode::MISDIRECTED_REQUEST);
    }

    #[test]
    fn a_connection_asked_for_another_host_is_misdirected() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = ca_and_client(dir.path());
        let rt = crate::pipeline::testing::runtime(&format!(
            "[[apps]]\nname = \"a\"\nhost = \"a.example\"\nupstream = \"http://127.0.0.1:9\"\n[apps.client_certs]\nca = {:?}\n",
            ca.display().to_string()
        ));
        let a = app(&rt, "a");
        let req = http::Request::get("/").body(()).unwrap();
        let mut c = ctx(&req, "127.0.0.1", true, Some(a.clone()));
        // HTTP/2 set up for b.example (another app that asks) and reused.
        c.client_cert_asked = Some(Asked {
            sni: Some("b.example".into()),
        });
        let e = check(&mut c, &a, UnixTime::now()).err().unwrap();
        assert_eq!(e.status, StatusCode::MISDIRECTED_REQUEST);
        c.client_cert_asked = Some(Asked {
            sni: Some("a.example".into()),
        });
        let e = check(&mut c, &a, UnixTime::now()).err().unwrap();
        assert_eq!(
            e.status,
            StatusCode::FORBIDDEN,
            "asked for this host, none sent"
        );
    }

    #[test]
    fn optional_mode_lets_a_request_without_one_through() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, _) = runtime(dir.path(), "optional", "system");
        let a = app(&rt, "app");
        let req = http::Request::get("/").body(()).unwrap();
        let mut c = ctx(&req, "127.0.0.1", true, Some(a.clone()));
        c.client_cert_asked = Some(Asked { sni: None });
        assert!(matches!(
            check(&mut c, &a, UnixTime::now()),
            Ok(Flow::Continue)
        ));
        assert_eq!(c.user, None, "the app's own sign-in still decides");
    }
}
