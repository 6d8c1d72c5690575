//! The vbzkey workstation bridge: dongles over USB and the localhost API for staff browsers (filled in by the bridge issue).
#![forbid(unsafe_code)]
