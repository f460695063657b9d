//! TEMP STUB
use serde_json::Value;
pub fn unknown_fields(_root: &'static crate::schema::Message, _obj: &Value) -> Vec<String> {
    Vec::new()
}
pub fn strict_error_message(paths: &[String]) -> String {
    format!("strict decoding error: {}", paths.join(", "))
}
