use flowkeep_core::commands::{
    ConfigOut, GetConfig, Input, SetConfigValue, UpdateConfig, ValidateConfig, ValidationReport,
};
use flowkeep_core::workflow::Workflow;
use flowkeep_core::FieldError;
use serde_json::Value;

use super::{parse_config, validation_context, ChangeKind, ConfigService};
use crate::{Error, Result};
use flowkeep_store::queries;

impl ConfigService<'_> {
    pub fn get(&self, mut input: GetConfig) -> Result<ConfigOut> {
        input.check()?;
        let wf = self.read(|c| Ok(queries::workflows::get(c, &input.workflow_id)?))?;
        Ok(config_out(wf))
    }

    pub fn update(&self, mut input: UpdateConfig) -> Result<ConfigOut> {
        input.check()?;
        let doc = parse_config(&input.config)?;
        let wf = self.change_workflow(
            &input.workflow_id,
            input.expected_revision,
            ChangeKind::Config,
            |spec| {
                spec.config = doc.clone();
                Ok(())
            },
        )?;
        Ok(config_out(wf))
    }

    /// Sets one value; a string is first converted to the field's type, and
    /// `null` removes the value.
    pub fn set_value(&self, mut input: SetConfigValue) -> Result<ConfigOut> {
        input.check()?;
        let key = input.key;
        let value = input.value;
        let wf = self.change_workflow(
            &input.workflow_id,
            input.expected_revision,
            ChangeKind::Config,
            |spec| {
                let Some(field) = spec.config.field(&key) else {
                    let known: Vec<&str> =
                        spec.config.fields.iter().map(|f| f.key.as_str()).collect();
                    return Err(Error::invalid(
                        &format!("values.{key}"),
                        "undeclared",
                        format!(
                            "no field named \"{key}\"; the fields are: {}",
                            known.join(", ")
                        ),
                    ));
                };
                let value = match &value {
                    Value::Null => {
                        spec.config.values.remove(&key);
                        return Ok(());
                    }
                    Value::String(s) => field.coerce_text(s),
                    other => other.clone(),
                };
                spec.config.values.insert(key.clone(), value);
                Ok(())
            },
        )?;
        Ok(config_out(wf))
    }

    /// Validates the stored config, or a proposed one, without changing anything.
    pub fn validate(&self, mut input: ValidateConfig) -> Result<ValidationReport> {
        input.check()?;
        let wf = self.read(|c| Ok(queries::workflows::get(c, &input.workflow_id)?))?;
        let errors: Vec<FieldError> = match &input.config {
            Some(v) => flowkeep_core::config::ConfigDocument::from_json(v, &validation_context())
                .err()
                .unwrap_or_default(),
            None => wf.spec.config.validate(&validation_context()),
        };
        Ok(ValidationReport {
            valid: errors.is_empty(),
            errors,
        })
    }
}

fn config_out(wf: Workflow) -> ConfigOut {
    ConfigOut {
        workflow_id: wf.id,
        revision: wf.revision,
        config: wf.spec.config,
    }
}
