//! Placeholder: the embedded write-ahead-log backend.
