//! TEMP STUB
use crate::registry::ResourceType;
use serde_json::Value;
#[derive(Debug, Clone, PartialEq)]
pub enum FieldErrorType {
    Required,
    Invalid,
}
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub ty: FieldErrorType,
    pub field: String,
    pub value: Option<Value>,
    pub detail: String,
    pub supported: Vec<String>,
}
impl FieldError {
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.detail)
    }
    pub fn reason(&self) -> &'static str {
        "FieldValueInvalid"
    }
}
pub fn validate_create(_rt: &ResourceType, _obj: &Value) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_update(_rt: &ResourceType, _new: &Value, _old: &Value) -> Vec<FieldError> {
    Vec::new()
}
pub fn invalid_message(rt: &ResourceType, name: &str, errs: &[FieldError]) -> String {
    format!(
        "{} \"{}\" is invalid: {}",
        rt.group_kind(),
        name,
        errs.iter()
            .map(|e| e.message())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
