//! OCI images: pull, verify, store, unpack.
