use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{FieldDef, RetentionPolicy, RunSpec};
use crate::error::FieldError;
use crate::validation::{self, ValidationContext};

/// A workflow's typed configuration. `values` is a sorted map so that the
/// stored JSON is the same however the document was produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<CrossRule>,
    #[serde(default)]
    pub values: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSpec>,
    /// This workflow's own retention; the global policy applies otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,
}

/// A rule over several fields. `rule` names it: `less_than` (`fields: [a, b]`,
/// a < b), `required_if` (`field` is required when `if_field` equals `equals`),
/// `one_of_required` (at least one of `fields` has a value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct CrossRule {
    pub rule: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
}

impl ConfigDocument {
    /// Parses and fully validates a document given as JSON: its shape, its
    /// field definitions and its values. Every problem is returned at once.
    pub fn from_json(
        value: &Value,
        ctx: &ValidationContext<'_>,
    ) -> Result<ConfigDocument, Vec<FieldError>> {
        let doc = super::parse::parse_document(value)?;
        let errors = doc.validate(ctx);
        if errors.is_empty() {
            Ok(doc)
        } else {
            Err(errors)
        }
    }

    /// Every problem with the document: definition errors and value errors.
    pub fn validate(&self, ctx: &ValidationContext<'_>) -> Vec<FieldError> {
        validation::validate_document(self, ctx)
    }

    pub fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The value a field has: its own value, else its default.
    pub fn effective_value<'a>(&'a self, field: &'a FieldDef) -> Option<&'a Value> {
        self.values
            .get(&field.key)
            .filter(|v| !v.is_null())
            .or(field.default.as_ref())
    }

    /// Values with defaults filled in: what a run of the workflow receives.
    pub fn effective_values(&self) -> Map<String, Value> {
        let mut out = self.values.clone();
        for f in &self.fields {
            if let (None | Some(Value::Null), Some(d)) = (out.get(&f.key), &f.default) {
                out.insert(f.key.clone(), d.clone());
            }
        }
        out
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("config document serializes")
    }
}
