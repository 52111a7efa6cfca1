//! The admin password: a bcrypt hash from the config, or a random password
//! made for this run.
//!
//! SECURITY: the plaintext of a generated password is returned once, for
//! the caller to print on stdout; it is never logged. Verification goes
//! through bcrypt, whose final comparison is constant-time.

/// bcrypt cost for hashes moat makes: 2^12 rounds, about a quarter second
/// on a current core, which makes offline guessing expensive.
pub const COST: u32 = 12;

/// Letters and digits without look-alikes (0/O, 1/l/I), so a password read
/// off a terminal can be typed back without mistakes.
const ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
/// 24 characters of a 56-letter alphabet: about 139 bits.
const LENGTH: usize = 24;

pub struct AdminPassword {
    hash: String,
}

impl AdminPassword {
    pub fn from_hash(hash: String) -> Self {
        AdminPassword { hash }
    }

    /// A new random password and its hash.
    pub fn generate() -> Result<(AdminPassword, String), bcrypt::BcryptError> {
        let plain = random_password();
        let hash = bcrypt::hash(&plain, COST)?;
        Ok((AdminPassword { hash }, plain))
    }

    /// Names this password without revealing anything of it: a digest
    /// of its bcrypt hash, kept with the sessions it signed in.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let d = sha2::Sha256::digest(self.hash.as_bytes());
        d[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn verify(&self, candidate: &str) -> bool {
        bcrypt::verify(candidate, &self.hash).unwrap_or(false)
    }
}

/// A random password from the operating system's generator.
pub fn random_password() -> String {
    let mut out = String::with_capacity(LENGTH);
    // Rejection sampling keeps every letter equally likely.
    let limit = 256 - (256 % ALPHABET.len());
    while out.len() < LENGTH {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf).expect("the operating system's random generator works");
        for b in buf {
            if (b as usize) < limit && out.len() < LENGTH {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_passwords() {
        let a = random_password();
        assert_eq!(a.len(), LENGTH);
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(a, random_password());
    }

    #[test]
    fn verify() {
        // Cost 4 keeps the test fast; the code path is the same.
        let p = AdminPassword::from_hash(bcrypt::hash("right", 4).unwrap());
        assert!(p.verify("right"));
        assert!(!p.verify("wrong"));
        assert!(!AdminPassword::from_hash("not a hash".into()).verify("x"));
    }
}
