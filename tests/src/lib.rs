//! End-to-end tests of vbzkey across processes.
#![forbid(unsafe_code)]
