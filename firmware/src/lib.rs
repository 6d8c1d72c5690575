//! The vbzkey dongle firmware: a sans-IO core plus thin transports (filled in by the firmware issue).
#![forbid(unsafe_code)]
