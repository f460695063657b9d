//! Black-box tests live in main.rs.
