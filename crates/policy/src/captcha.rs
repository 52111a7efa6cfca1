//! The login page's captcha: moat's own proof of work, and the facts of
//! the hosted providers (their widget, form field, verify endpoint and
//! the origins their widget needs in the page's policy).
//!
//! # Proof of work
//! A challenge is `pow1.EXPIRES.DIFFICULTY.RANDOM.MAC`: issued by moat,
//! signed with its key (so it cannot be made up or its difficulty
//! lowered), expiring (so it cannot be stockpiled), and accepted once
//! (the caller keeps a replay cache of `RANDOM` until `EXPIRES`). A
//! solution is a decimal counter `n` such that SHA-256 of
//! `CHALLENGE:n` starts with `DIFFICULTY` zero bits: about
//! 2^DIFFICULTY hashes for the browser, one for moat. No third party, no
//! tracking, works offline.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A hosted captcha service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosted {
    Recaptcha,
    Hcaptcha,
    Turnstile,
}

impl Hosted {
    pub fn name(self) -> &'static str {
        match self {
            Hosted::Recaptcha => "recaptcha",
            Hosted::Hcaptcha => "hcaptcha",
            Hosted::Turnstile => "turnstile",
        }
    }

    /// Where the server checks a token (each service's documented
    /// siteverify endpoint).
    pub fn verify_url(self) -> &'static str {
        match self {
            Hosted::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
            Hosted::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Hosted::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        }
    }

    /// The widget's script.
    pub fn script(self) -> &'static str {
        match self {
            Hosted::Recaptcha => "https://www.google.com/recaptcha/api.js",
            Hosted::Hcaptcha => "https://js.hcaptcha.com/1/api.js",
            Hosted::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/api.js",
        }
    }

    /// The class of the element the script turns into the widget.
    pub fn widget_class(self) -> &'static str {
        match self {
            Hosted::Recaptcha => "g-recaptcha",
            Hosted::Hcaptcha => "h-captcha",
            Hosted::Turnstile => "cf-turnstile",
        }
    }

    /// The form field the widget fills with its token.
    pub fn response_field(self) -> &'static str {
        match self {
            Hosted::Recaptcha => "g-recaptcha-response",
            Hosted::Hcaptcha => "h-captcha-response",
            Hosted::Turnstile => "cf-turnstile-response",
        }
    }

    /// The origins the widget loads scripts, frames, styles and requests
    /// from, as each service documents for a Content-Security-Policy.
    pub fn origins(self) -> &'static [&'static str] {
        match self {
            Hosted::Recaptcha => &["https://www.google.com", "https://www.gstatic.com"],
            Hosted::Hcaptcha => &["https://hcaptcha.com", "https://*.hcaptcha.com"],
            Hosted::Turnstile => &["https://challenges.cloudflare.com"],
        }
    }
}

/// The login page's policy with a hosted widget: the strict base, widened
/// by the service's origins for scripts, frames, styles and requests only.
pub fn hosted_page_csp(base: &str, service: Hosted) -> String {
    let o = service.origins().join(" ");
    format!("{base}; script-src {o}; frame-src {o}; connect-src {o}; style-src 'self' {o}")
        .replacen("style-src 'self'; ", "", 1)
}

/// Issues a challenge of `difficulty` bits valid until `expires` (Unix
/// seconds); `random` is 16 fresh bytes from the caller.
pub fn issue(key: &[u8; 32], expires: u64, difficulty: u8, random: &[u8; 16]) -> String {
    let body = format!("pow1.{expires}.{difficulty}.{}", B64.encode(random));
    let mac = mac(key, body.as_bytes());
    format!("{body}.{}", B64.encode(mac))
}

/// Why a solution was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowError {
    /// Not a challenge moat issued (or altered).
    Forged,
    Expired,
    /// Issued with less work than is required now.
    TooEasy,
    /// The counter does not give enough zero bits.
    Unsolved,
}

/// A verified solution: the challenge's unique part and when it expires
/// (for the caller's replay cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solved {
    pub id: String,
    pub expires: u64,
}

/// Checks `solution` for `challenge` at `now` against `min_difficulty`.
pub fn verify(
    key: &[u8; 32],
    challenge: &str,
    solution: &str,
    now: u64,
    min_difficulty: u8,
) -> Result<Solved, PowError> {
    let (body, sig) = challenge.rsplit_once('.').ok_or(PowError::Forged)?;
    let sig = B64.decode(sig).map_err(|_| PowError::Forged)?;
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"pow");
    m.update(body.as_bytes());
    m.verify_slice(&sig).map_err(|_| PowError::Forged)?;
    let mut parts = body.split('.');
    let (Some("pow1"), Some(expires), Some(difficulty), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(PowError::Forged);
    };
    let expires: u64 = expires.parse().map_err(|_| PowError::Forged)?;
    let difficulty: u8 = difficulty.parse().map_err(|_| PowError::Forged)?;
    if now >= expires {
        return Err(PowError::Expired);
    }
    if difficulty < min_difficulty {
        return Err(PowError::TooEasy);
    }
    if solution.is_empty() || solution.len() > 20 || !solution.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PowError::Unsolved);
    }
    let digest = Sha256::digest(format!("{challenge}:{solution}").as_bytes());
    if leading_zero_bits(&digest) < u32::from(difficulty) {
        return Err(PowError::Unsolved);
    }
    Ok(Solved {
        id: id.to_owned(),
        expires,
    })
}

fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for b in bytes {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"pow");
    m.update(data);
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn solve(challenge: &str, difficulty: u8) -> String {
        (0u64..)
            .map(|n| n.to_string())
            .find(|n| {
                let d = Sha256::digest(format!("{challenge}:{n}").as_bytes());
                leading_zero_bits(&d) >= u32::from(difficulty)
            })
            .unwrap()
    }

    #[test]
    fn a_solved_challenge_verifies_once_per_id() {
        let c = issue(&KEY, 1000, 8, &[1; 16]);
        let n = solve(&c, 8);
        let ok = verify(&KEY, &c, &n, 999, 8).unwrap();
        assert_eq!(ok.expires, 1000);
        assert_eq!(ok.id, B64.encode([1; 16]));
    }

    #[test]
    fn forged_expired_easy_and_wrong_answers_are_refused() {
        let c = issue(&KEY, 1000, 8, &[1; 16]);
        let n = solve(&c, 8);
        assert_eq!(verify(&[8; 32], &c, &n, 10, 8), Err(PowError::Forged));
        let lowered = c.replacen(".8.", ".1.", 1);
        assert_eq!(verify(&KEY, &lowered, &n, 10, 1), Err(PowError::Forged));
        assert_eq!(verify(&KEY, &c, &n, 1000, 8), Err(PowError::Expired));
        assert_eq!(verify(&KEY, &c, &n, 10, 12), Err(PowError::TooEasy));
        // Some counter that does not solve it.
        let wrong = (0u64..)
            .map(|n| n.to_string())
            .find(|m| {
                let d = Sha256::digest(format!("{c}:{m}").as_bytes());
                leading_zero_bits(&d) < 8
            })
            .unwrap();
        assert_eq!(verify(&KEY, &c, &wrong, 10, 8), Err(PowError::Unsolved));
        assert_eq!(verify(&KEY, &c, "-1", 10, 8), Err(PowError::Unsolved));
        assert_eq!(verify(&KEY, "pow1.x", "1", 10, 8), Err(PowError::Forged));
        assert_eq!(verify(&KEY, "", "", 10, 8), Err(PowError::Forged));
    }

    #[test]
    fn zero_bits_are_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0x10, 0xff]), 11);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_hosted_widget_widens_only_its_own_origins() {
        let base = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'";
        let csp = hosted_page_csp(base, Hosted::Turnstile);
        assert_eq!(
            csp,
            "default-src 'none'; img-src 'self'; form-action 'self'; script-src https://challenges.cloudflare.com; frame-src https://challenges.cloudflare.com; connect-src https://challenges.cloudflare.com; style-src 'self' https://challenges.cloudflare.com"
        );
    }
}
