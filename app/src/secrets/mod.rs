//! Secrets: `secret` fields' values sealed on this device before they are
//! stored or synced (`keys.rs`: XChaCha20-Poly1305 under the workspace key),
//! masked in everything a command returns (`Mask`), opened only for a job
//! (`open_for_job`) and for an explicit reveal, and masked in what a job
//! prints (`masker.rs`).

mod keys;
pub(crate) mod masker;

pub use keys::{key_id, Keys, Unavailable};

use flowkeep_core::commands::{
    Input, RevealConfig, RevealedConfig, RotateSecrets, SecretKey, SecretsRotated,
};
use flowkeep_core::config::{ConfigDocument, ConfigType};
use flowkeep_core::secret::{is_sealed, sealed_values, MASK};
use flowkeep_core::workflow::Workflow;
use flowkeep_core::workflow::WorkflowSpec;
use flowkeep_core::FieldError;
use serde_json::{Map, Value};

use crate::service::ChangeKind;
use crate::{ConfigService, Error, Result, Service};
use flowkeep_store::queries;

impl Service {
    /// Seals `spec`'s secret values before it is written: clear text is
    /// sealed (kept as it was when it opens to the same text, so an
    /// unchanged secret is no change), `MASK` keeps the value `before` had,
    /// a sealed value stays. Call after validation: clear text was checked
    /// against the field's rules; sealed values cannot be.
    pub(crate) fn seal_secrets(
        &self,
        spec: &mut WorkflowSpec,
        before: Option<&WorkflowSpec>,
    ) -> Result<()> {
        let keys: Vec<String> = flowkeep_core::secret::secret_keys(&spec.config)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut errors = Vec::new();
        for key in keys {
            let Some(Value::String(v)) = spec.config.values.get(&key).cloned() else {
                continue;
            };
            let old = before
                .and_then(|b| b.config.values.get(&key))
                .and_then(|v| v.as_str())
                .filter(|s| is_sealed(s))
                .map(str::to_owned);
            let sealed = if v == MASK {
                match old {
                    Some(o) => o,
                    None => {
                        errors.push(FieldError::new(
                            format!("values.{key}"),
                            "secret",
                            format!("{MASK} keeps the value a secret has, and {key} has none yet: type the secret"),
                        ));
                        continue;
                    }
                }
            } else if is_sealed(&v) {
                v
            } else {
                match old.filter(|o| self.secrets.open(o).as_deref() == Ok(v.as_str())) {
                    Some(same) => same,
                    None => self.secrets.seal(&v)?,
                }
            };
            spec.config.values.insert(key, Value::String(sealed));
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        // Validated in clear; what is stored and synced is the sealed form,
        // about 4/3 the size of each secret (and, on a new workflow, its
        // schedule's owner, set after validation): held to the bounds
        // every device reads a synced document within.
        let mut bounds = flowkeep_core::validation::bounds::check(&spec.config);
        for e in bounds.iter_mut().filter(|e| e.code == "size") {
            e.message.push_str(
                " as stored (secret values are stored sealed, about 4/3 of their length)",
            );
        }
        if bounds.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(bounds))
        }
    }

    /// The effective values with every secret opened, for a job, and the
    /// clear texts (to mask in its output). A secret this device cannot
    /// open refuses the run, naming the field.
    pub(crate) fn open_for_job(
        &self,
        config: &ConfigDocument,
    ) -> Result<(Map<String, Value>, Vec<String>)> {
        let mut values = config.effective_values();
        let mut clear = Vec::new();
        let mut errors = Vec::new();
        for f in config
            .fields
            .iter()
            .filter(|f| f.kind == ConfigType::Secret)
        {
            let Some(Value::String(v)) = values.get(&f.key).cloned() else {
                continue;
            };
            if !is_sealed(&v) {
                clear.push(v);
                continue;
            }
            match self.secrets.open(&v) {
                Ok(plain) => {
                    values.insert(f.key.clone(), Value::String(plain.clone()));
                    clear.push(plain);
                }
                Err(why) => errors.push(FieldError::new(
                    format!("values.{}", f.key),
                    "secret",
                    why.to_string(),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        clear.retain(|s| !s.is_empty());
        Ok((values, clear))
    }
}

impl Service {
    /// The secrets this device cannot open, as `(workflow id, field, why)`:
    /// after a join, what is missing (a key) is said at once.
    pub fn unopened_secrets(&self) -> Result<Vec<(String, String, String)>> {
        let mut out = Vec::new();
        for wf in self.live_workflows()? {
            for (key, sealed) in sealed_values(&wf.spec.config) {
                if let Err(why) = self.secrets.open(sealed) {
                    out.push((wf.id.clone(), key.to_owned(), why.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// Every live workflow, read one by one (rotation and the join's check
    /// walk them all, rarely).
    fn live_workflows(&self) -> Result<Vec<Workflow>> {
        let ids: Vec<String> = self.read(|c| Ok(queries::workflows::ids(c, None, None)?))?;
        ids.iter()
            .map(|id| self.read(|c| Ok(queries::workflows::get(c, id)?)))
            .collect()
    }
}

impl ConfigService<'_> {
    /// The values with secrets opened (`config get --reveal`, the app's
    /// Reveal): the one command whose answer is not masked.
    pub fn reveal(&self, mut input: RevealConfig) -> Result<RevealedConfig> {
        input.check()?;
        let wf = self.read(|c| Ok(queries::workflows::get(c, &input.workflow_id)?))?;
        let mut values = wf.spec.config.values.clone();
        let mut unavailable = Vec::new();
        for (key, sealed) in sealed_values(&wf.spec.config) {
            match self.secrets.open(sealed) {
                Ok(plain) => {
                    values.insert(key.to_owned(), Value::String(plain));
                }
                Err(why) => {
                    values.insert(key.to_owned(), Value::Null);
                    unavailable.push(FieldError::new(
                        format!("values.{key}"),
                        "secret",
                        why.to_string(),
                    ));
                }
            }
        }
        Ok(RevealedConfig {
            workflow_id: wf.id,
            revision: wf.revision,
            values,
            unavailable,
        })
    }

    /// Makes a new key the one that seals, and seals every secret again
    /// under it: one ordinary change event per workflow that has secrets.
    /// The old key is kept so values synced from devices that have not
    /// rotated yet still open here.
    pub fn rotate_secrets(&self, mut input: RotateSecrets) -> Result<SecretsRotated> {
        input.check()?;
        let old = self.secrets.current_if_any()?;
        // Every value must open before anything changes.
        let mut todo = Vec::new();
        let mut errors = Vec::new();
        for wf in self.live_workflows()? {
            let mut opened = Vec::new();
            for (key, sealed) in sealed_values(&wf.spec.config) {
                match self.secrets.open(sealed) {
                    Ok(p) => opened.push((key.to_owned(), p)),
                    Err(why) => errors.push(FieldError::new(
                        format!("{}: values.{key}", wf.id),
                        "secret",
                        why.to_string(),
                    )),
                }
            }
            if !opened.is_empty() {
                todo.push((wf.id.clone(), opened));
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let new = self.secrets.add(keys::generate()?, true)?;
        let mut values = 0;
        for (id, opened) in &todo {
            self.change_workflow(id, None, ChangeKind::Config, |spec| {
                for (key, plain) in opened {
                    let sealed = keys::seal_with(&new, plain)?;
                    spec.config
                        .values
                        .insert(key.clone(), Value::String(sealed));
                }
                Ok(())
            })?;
            values += opened.len();
        }
        Ok(SecretsRotated {
            key_id: new.id,
            previous_key_id: old.map(|k| k.id),
            workflows: todo.len() as u64,
            values: values as u64,
        })
    }

    /// This workspace's current key as text, to give a new device
    /// (`sync join --secrets-key`); or adds one given (`key`).
    pub fn secret_key(&self, mut input: SecretKey) -> Result<SecretKey> {
        input.check()?;
        if let Some(text) = &input.key {
            let key = keys::decode(text).ok_or_else(|| {
                Error::invalid(
                    "key",
                    "format",
                    "not a Flowkeep secret key (44 characters of base64)",
                )
            })?;
            // A key brought from another device seals from now on, so both
            // devices seal with the same one.
            let k = self.secrets.add(key, true)?;
            return Ok(SecretKey {
                key: None,
                key_id: Some(k.id),
                kept_in: self.secrets.kept_in(),
            });
        }
        let k = self.secrets.current()?;
        Ok(SecretKey {
            key: Some(keys::encode(&k.key)),
            key_id: Some(k.id),
            kept_in: self.secrets.kept_in(),
        })
    }
}

/// What a command returns, as people may see it: sealed values masked.
/// Every command's output says how (`command_table.rs`); a type holding
/// workflow values masks them, the others have nothing to mask.
pub trait Mask {
    fn mask(&mut self) {}
}

pub(crate) fn mask_json<T: serde::Serialize + serde::de::DeserializeOwned>(t: &mut T) {
    let Ok(mut v) = serde_json::to_value(&*t) else {
        return;
    };
    let before = v.clone();
    flowkeep_core::secret::mask_output(&mut v);
    if v != before {
        if let Ok(masked) = serde_json::from_value(v) {
            *t = masked;
        }
    }
}

macro_rules! masked_through_json {
    ($($t:ty),* $(,)?) => { $( impl $crate::secrets::Mask for $t { fn mask(&mut self) { $crate::secrets::mask_json(self) } } )* };
}
macro_rules! nothing_to_mask {
    ($($t:ty),* $(,)?) => { $( impl $crate::secrets::Mask for $t {} )* };
}
pub(crate) use {masked_through_json, nothing_to_mask};
