//! Label and field selectors as the API server evaluates `?labelSelector=` and
//! `?fieldSelector=`, and as controllers evaluate a `metav1.LabelSelector`.
//! The one thing to know: error texts mirror apimachinery's word for word, because
//! `kubectl` shows them to users verbatim inside a `BadRequest` Status.

mod field;
mod label;
mod parse;
mod validation;

pub use field::FieldSelector;
pub use label::{LabelSelector, Operator, Requirement};

/// Why a selector was rejected. `Display` is the upstream message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string that does not follow the grammar, or a requirement whose
    /// key or values are invalid.
    #[error("{0}")]
    LabelSyntax(String),
    /// A field selector term without an operator or with a bad escape.
    #[error("{0}")]
    FieldSyntax(String),
    /// A field selector names a field the resource cannot be filtered by.
    #[error("field label not supported: {0}")]
    FieldNotSupported(String),
}
