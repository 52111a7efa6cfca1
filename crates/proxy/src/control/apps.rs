//! Apps created through the admin API: each change is checked against
//! the served apps (name, mount, rate-limit zones) and built before it is
//! stored, and served once stored. Apps from the config file are
//! read-only here.

use moat_config::App;
use moat_store::Actor;
use serde_json::Value;

use super::{Control, ControlError, Inputs, log_change};

impl Control {
    /// Creates an API app; `definition` is what is stored (the normalised
    /// request body).
    pub async fn create_app(
        &self,
        actor: &Actor,
        app: App,
        definition: &Value,
    ) -> Result<(), ControlError> {
        let mut inputs = self.inputs.lock().await;
        let name = app.name.clone();
        self.change_apps(&mut inputs, None, Some(app), async {
            self.parts.store.create_app(actor, &name, definition).await
        })
        .await?;
        log_change(actor, &name, "app created through the admin API", 1);
        Ok(())
    }

    /// Replaces an API app's definition.
    pub async fn update_app(
        &self,
        actor: &Actor,
        app: App,
        definition: &Value,
    ) -> Result<(), ControlError> {
        let mut inputs = self.inputs.lock().await;
        let name = app.name.clone();
        read_only(&inputs, &name)?;
        // An unknown name fails in the store (404) after the checks.
        self.change_apps(&mut inputs, Some(&name), Some(app), async {
            self.parts
                .store
                .update_app(actor, &name, definition)
                .await
                .map(drop)
        })
        .await?;
        log_change(actor, &name, "app updated through the admin API", 1);
        Ok(())
    }

    pub async fn delete_app(&self, actor: &Actor, name: &str) -> Result<(), ControlError> {
        let mut inputs = self.inputs.lock().await;
        read_only(&inputs, name)?;
        self.change_apps(&mut inputs, Some(name), None, async {
            self.parts.store.delete_app(actor, name).await.map(drop)
        })
        .await?;
        log_change(actor, name, "app deleted through the admin API", 1);
        Ok(())
    }

    /// The stored definition of an API app (what a merge patch applies
    /// to); an app of the config file is read-only.
    pub async fn stored_definition(&self, name: &str) -> Result<Value, ControlError> {
        read_only(&*self.inputs.lock().await, name)?;
        Ok(self.parts.store.app(name).await?.definition)
    }

    /// Refuses a change to an app the config file defines.
    pub async fn check_writable(&self, name: &str) -> Result<(), ControlError> {
        read_only(&*self.inputs.lock().await, name)
    }

    /// Reads the app's bundle manifest again and starts fresh upstream
    /// connections (the whole runtime is rebuilt from the same
    /// definitions).
    pub async fn reload_app(&self, actor: &Actor, name: &str) -> Result<(), ControlError> {
        if !self.runtime().config.apps.iter().any(|a| a.name == name) {
            return Err(ControlError::NotFound(format!("app {name:?} not found")));
        }
        let inputs = self.inputs.lock().await;
        self.install(&inputs)
            .map_err(|e| ControlError::InvalidValue(e.to_string()))?;
        self.parts
            .store
            .record(actor, "app.reload", name, None, None)
            .await?;
        log_change(actor, name, "app reloaded through the admin API", 1);
        Ok(())
    }

    /// Checks `new` (replacing the API app `replacing`) against the served
    /// apps and that the result builds, stores the change with `write`,
    /// then serves it.
    async fn change_apps(
        &self,
        inputs: &mut Inputs,
        replacing: Option<&str>,
        new: Option<App>,
        write: impl std::future::Future<Output = Result<(), moat_store::StoreError>>,
    ) -> Result<(), ControlError> {
        if let Some(app) = &new {
            let served = self.runtime().config.clone();
            if let Some(why) = served.conflict(app, replacing) {
                return Err(ControlError::Conflict(why));
            }
            let zones: Vec<String> = served
                .rate_limit
                .zones
                .iter()
                .map(|z| z.name.clone())
                .collect();
            if let Some(why) = moat_config::validate::unknown_zone(&zones, app) {
                return Err(ControlError::Invalid(vec![
                    moat_config::Problem::new("rate_limit", why)
                        .fix("name a zone defined under [[rate_limit.zones]] in the config file"),
                ]));
            }
            if let Some(name) = moat_config::validate::unknown_provider(&app.auth, &served.auth) {
                return Err(ControlError::Invalid(vec![
                    moat_config::Problem::new(
                        "auth",
                        format!("no [[auth.oidc]] provider is named {name:?}"),
                    )
                    .fix("name a provider defined under [[auth.oidc]] in the config file"),
                ]));
            }
        }
        let mut apps: Vec<App> = inputs
            .api_apps
            .iter()
            .filter(|a| Some(a.name.as_str()) != replacing)
            .cloned()
            .collect();
        apps.extend(new);
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        let next = Inputs {
            file: inputs.file.clone(),
            api_apps: apps,
            grants: inputs.grants.clone(),
        };
        let runtime = self
            .build(&next)
            .map_err(|e| ControlError::InvalidValue(e.to_string()))?;
        write.await?;
        *inputs = next;
        self.serve(runtime);
        Ok(())
    }
}

/// Refuses a change to an app that the config file defines.
fn read_only(inputs: &Inputs, name: &str) -> Result<(), ControlError> {
    let file = &inputs.file;
    if !file.apps.iter().any(|a| a.name == name) {
        return Ok(());
    }
    let where_ = file
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the config file".into());
    Err(ControlError::ReadOnly(format!(
        "app {name:?} is defined in {where_}; it is read-only through the API (change it there and reload with SIGHUP)"
    )))
}
