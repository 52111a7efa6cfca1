//! The system account's second factor: time-based one-time passwords
//! (RFC 6238: HMAC-SHA1, six digits, 30-second steps, one step of skew
//! either way), the `otpauth://` URI authenticator apps read, and the
//! single-use recovery codes, kept only as hashes. The arithmetic is the
//! `totp-rs` crate's; what is moat's is that a code is accepted once
//! (never for a step at or before the last one used) and how recovery
//! codes look.

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const STEP_SECS: u64 = 30;
pub const DIGITS: u8 = 6;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not the code of this step or a neighbour.
    Wrong,
    /// The code of a step already used: a replay, refused even though it
    /// is right.
    Reused,
}

fn totp(secret: &[u8; 20]) -> Totp {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::from(*secret))
        .build_noncompliant()
}

/// Checks `code` at `now` (Unix seconds); returns the step it belongs to,
/// which the caller keeps as `last_step` so the code cannot be used again.
pub fn verify(
    secret: &[u8; 20],
    code: &str,
    now: u64,
    last_step: Option<u64>,
) -> Result<u64, Refusal> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Wrong);
    }
    let step = totp(secret).check(&code, now).ok_or(Refusal::Wrong)?;
    match last_step {
        Some(last) if step <= last => Err(Refusal::Reused),
        _ => Ok(step),
    }
}

/// The code for `now`, for tests and for confirming an enrolment.
pub fn code_at(secret: &[u8; 20], now: u64) -> String {
    totp(secret).generate(now).to_string()
}

/// The secret in the base32 form authenticator apps take.
pub fn base32(secret: &[u8; 20]) -> String {
    Secret::from(*secret).to_base32()
}

/// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…` (the Key Uri Format
/// authenticator apps scan).
pub fn otpauth_uri(secret: &[u8; 20], issuer: &str, account: &str) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// A recovery code from ten random bytes: `xxxxx-xxxxx-xxxxx-xxxxx` in
/// lower-case base32 (80 bits).
pub fn recovery_code(random: &[u8; 10]) -> String {
    let b32 = Secret::from(random.to_vec())
        .to_base32()
        .to_ascii_lowercase();
    let b32: String = b32.chars().filter(|c| *c != '=').collect();
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("-")
}

/// What is stored of a recovery code: the SHA-256 of its letters, so the
/// dashes, spaces and case a person types do not matter.
pub fn recovery_hash(code: &str) -> [u8; 32] {
    let letters: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(letters.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 seed, truncated to six digits.
    const SEED: &[u8; 20] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors() {
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(SEED, t), code, "t = {t}");
        }
    }

    #[test]
    fn a_code_is_accepted_once_within_one_step_of_skew() {
        let now = 1_234_567_890;
        let code = code_at(SEED, now);
        let step = verify(SEED, &code, now, None).unwrap();
        assert_eq!(step, now / STEP_SECS);
        assert_eq!(verify(SEED, &code, now, Some(step)), Err(Refusal::Reused));
        // The next step's code is accepted after.
        let next = code_at(SEED, now + STEP_SECS);
        assert_eq!(
            verify(SEED, &next, now + STEP_SECS, Some(step)),
            Ok(step + 1)
        );
        // One step early or late is tolerated, two is not.
        assert!(verify(SEED, &code, now + STEP_SECS, None).is_ok());
        assert_eq!(
            verify(SEED, &code, now + 3 * STEP_SECS, None),
            Err(Refusal::Wrong)
        );
        assert_eq!(verify(SEED, "12345", now, None), Err(Refusal::Wrong));
        assert_eq!(verify(SEED, "abcdef", now, None), Err(Refusal::Wrong));
        assert_eq!(
            verify(SEED, &format!("{} {}", &code[..3], &code[3..]), now, None),
            Ok(step),
            "spaces are ignored"
        );
    }

    #[test]
    fn uri_and_recovery_codes() {
        let uri = otpauth_uri(SEED, "moat", "admin@host");
        assert!(uri.starts_with("otpauth://totp/moat:admin%40host?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=moat"), "{uri}");
        let code = recovery_code(&[0xab; 10]);
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.matches('-').count(), 3);
        assert_eq!(
            recovery_hash(&code),
            recovery_hash(&code.to_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_hash(&code),
            recovery_hash(&recovery_code(&[0xac; 10]))
        );
    }
}
