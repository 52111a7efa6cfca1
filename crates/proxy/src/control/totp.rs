//! The system account's second factor: enrolling (a new secret, confirmed
//! by a code from the authenticator, which makes the recovery codes) and
//! removing it. Every operation is audited, never with the secret.

use moat_store::Actor;

use super::{Control, ControlError, log_change};

/// A new enrolment's secret, shown once to the admin who asked.
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
}

impl Control {
    fn system_user(&self) -> String {
        self.parts.runtime.load().config.security.admin_user.clone()
    }

    /// Starts enrolling the system account. A second factor in force
    /// stays until a code confirms the new one.
    pub async fn totp_begin(&self, actor: &Actor) -> Result<Enrolment, ControlError> {
        let user = self.system_user();
        let mut secret = [0u8; 20];
        getrandom::fill(&mut secret).map_err(|e| ControlError::Internal(e.to_string()))?;
        self.parts.store.begin_totp(&user, &secret, actor).await?;
        log_change(actor, &user, "second factor enrolment started", 1);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let account = if host.is_empty() {
            user.clone()
        } else {
            format!("{user}@{host}")
        };
        Ok(Enrolment {
            secret_base32: moat_policy::totp::base32(&secret),
            otpauth_uri: moat_policy::totp::otpauth_uri(&secret, "moat", &account),
        })
    }

    /// Confirms the enrolment with a code from the authenticator; returns
    /// the recovery codes (shown once; only their hashes are kept).
    pub async fn totp_confirm(
        &self,
        actor: &Actor,
        code: &str,
    ) -> Result<Vec<String>, ControlError> {
        let user = self.system_user();
        let store = &self.parts.store;
        let secret = store.pending_totp(&user).await?.ok_or_else(|| {
            ControlError::NotFound(
                "no enrolment is under way: start one with moat totp enroll".into(),
            )
        })?;
        let now = self.parts.clock.now_ms() / 1000;
        let step = moat_policy::totp::verify(&secret, code, now as u64, None).map_err(|_| {
            ControlError::BadRequest(
                "that is not the code the authenticator shows now (check the phone's clock, and that the secret was entered exactly)".into(),
            )
        })?;
        let mut codes = Vec::with_capacity(moat_policy::totp::RECOVERY_CODES);
        for _ in 0..moat_policy::totp::RECOVERY_CODES {
            let mut b = [0u8; 10];
            getrandom::fill(&mut b).map_err(|e| ControlError::Internal(e.to_string()))?;
            codes.push(moat_policy::totp::recovery_code(&b));
        }
        let hashes: Vec<[u8; 32]> = codes
            .iter()
            .map(|c| moat_policy::totp::recovery_hash(c))
            .collect();
        store.confirm_totp(&user, step, &hashes, actor).await?;
        log_change(actor, &user, "second factor enrolled", codes.len());
        Ok(codes)
    }

    /// Removes the system account's second factor.
    pub async fn totp_remove(&self, actor: &Actor) -> Result<(), ControlError> {
        let user = self.system_user();
        let removed = self.parts.store.remove_totp(&user, actor).await?;
        if !removed {
            return Err(ControlError::NotFound(format!(
                "{user} has no second factor"
            )));
        }
        log_change(actor, &user, "second factor removed", 1);
        Ok(())
    }
}
