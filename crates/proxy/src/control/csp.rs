//! CSP approvals granted through the admin API: an approval names pending
//! requests of an app's manifest; a dangerous request cannot be approved
//! here at all (only the app's admin layer can accept it).

use moat_store::Actor;

use super::{Control, ControlError, load_csp_grants, log_change};

/// Which requests or approvals a change names.
#[derive(Debug, Clone, Default)]
pub struct CspSelection {
    pub source: Option<String>,
    /// With `source`: only in this directive.
    pub directive: Option<String>,
    pub all: bool,
}

impl CspSelection {
    pub fn names(&self, directive: &str, source: &str) -> bool {
        self.all
            || (self.source.as_deref() == Some(source)
                && self.directive.as_deref().is_none_or(|d| d == directive))
    }
}

impl Control {
    /// Approves the pending requests `which` names; returns the
    /// (directive, source) pairs approved.
    pub async fn approve_csp(
        &self,
        actor: &Actor,
        app: &str,
        which: &CspSelection,
    ) -> Result<Vec<(String, String)>, ControlError> {
        if which.source.is_none() && !which.all {
            return Err(ControlError::BadRequest(
                "name a source to approve, or all".into(),
            ));
        }
        let mut inputs = self.inputs.lock().await;
        let served = self.served_app(app)?;
        let c = &served.response_policy.csp;
        let pairs: Vec<(String, String)> = c
            .pending
            .iter()
            .filter(|g| which.names(&g.directive, &g.source))
            .map(|g| (g.directive.clone(), g.source.clone()))
            .collect();
        if pairs.is_empty() {
            // Say why: dangerous requests cannot be approved here at all.
            if let Some((g, why)) = c
                .refused
                .iter()
                .find(|(g, _)| which.source.as_deref() == Some(g.source.as_str()))
            {
                return Err(ControlError::Conflict(format!(
                    "{g} is dangerous ({why}); only the app's admin layer can accept it, with allow_unsafe = [\"{g}\"]"
                )));
            }
            return Err(ControlError::NotFound(match &which.source {
                Some(s) if !which.all => format!(
                    "app {app:?} has no pending request for {s}; `moat csp show {app}` lists them"
                ),
                _ => format!("app {app:?} has no pending requests"),
            }));
        }
        self.parts.store.approve_csp(actor, app, &pairs).await?;
        inputs.grants = load_csp_grants(&self.parts.store).await?;
        self.install(&inputs)
            .map_err(|e| ControlError::Internal(e.to_string()))?;
        log_change(
            actor,
            app,
            "CSP requests approved through the admin API",
            pairs.len(),
        );
        Ok(pairs)
    }

    /// Revokes the approvals `which` names; returns the pairs revoked.
    pub async fn revoke_csp(
        &self,
        actor: &Actor,
        app: &str,
        which: &CspSelection,
    ) -> Result<Vec<(String, String)>, ControlError> {
        if which.source.is_none() && !which.all {
            return Err(ControlError::BadRequest(
                "name a source to revoke, or all".into(),
            ));
        }
        let mut inputs = self.inputs.lock().await;
        let gone = self
            .parts
            .store
            .revoke_csp(actor, app, |d, s| which.names(d, s))
            .await?;
        if gone.is_empty() {
            return Err(ControlError::NotFound(format!(
                "app {app:?} has no such approval"
            )));
        }
        inputs.grants = load_csp_grants(&self.parts.store).await?;
        self.install(&inputs)
            .map_err(|e| ControlError::Internal(e.to_string()))?;
        log_change(
            actor,
            app,
            "CSP approvals revoked through the admin API",
            gone.len(),
        );
        Ok(gone)
    }

    /// A served app, or the 404.
    pub fn served_app(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<crate::runtime::AppRuntime>, ControlError> {
        self.runtime()
            .apps
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .ok_or_else(|| ControlError::NotFound(format!("app {name:?} not found")))
    }
}
