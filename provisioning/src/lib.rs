//! The vbzkey admin CLI for the key lifecycle (filled in by the lifecycle issue).
#![forbid(unsafe_code)]
