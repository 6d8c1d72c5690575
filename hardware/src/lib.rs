//! Board support for the vbzkey dongle behind embedded-hal traits (filled in by the firmware issue).
#![forbid(unsafe_code)]
