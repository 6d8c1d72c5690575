//! The custody policy: for every request, what it needs before its handler runs. One table,
//! as data; `Dongle::handle` consults it first and no handler checks rights by itself.
//!
//! | request | access | needs | button | on a broken audit log | key use |
//! | --- | --- | --- | --- | --- | --- |
//! | `Hello`, `DeviceKey` | plain | nothing | — | served | — |
//! | `Init`, `Restore`, `CloneBegin`, `CloneImport` | session | uninitialised | — | refused | — |
//! | `AdminAuth` | own session | admin credential | — | refused | — |
//! | `Unlock` | session | staff credential | — | refused | yes |
//! | `Lock`, `EndAdmin`, `AuditTail`, `AuditRead`, `Pairings` | session | nothing | — | served | — |
//! | `PublicKeys` | session | initialised | — | served | — |
//! | `UnsealBatch` | session | staff unlock | over `confirm_batch_over` | refused | yes |
//! | `Rewrap`, `Rotate`, `Retire` | session | admin window | — | refused | `Rewrap` |
//! | `Backup`, `CloneExport`, `Pair`, `Unpair`, `SetStaffPin`, `ChangeAdminPin` | session | admin window | always | refused | — |
//! | `FactoryReset` | session | admin window, or recovery | always | served: the way back (it sets the broken log aside) | — |
//!
//! Whatever opens keys (both credentials, the staff unlock, an admin window, the recovery reset)
//! is refused with `DeviceSecretMissing` while the key store is sealed to an OTP device secret
//! the firmware was not given: before any counter is written, so no PIN try is spent, and no
//! reset is offered for what is not damage.
//!
//! "Session" means: inside an encrypted session of a paired host once any host is paired,
//! and always on a network link (TCP). "Own session" adds: always inside an encrypted session,
//! on every link, even while no host is paired (then a host key made for the one process
//! will do). An admin window belongs to its connection, and on USB the dongle cannot see a
//! program end: only a session's keys tie the window to the program that opened it, so the
//! next program on the link cannot inherit it. Limits (rate, tries, idle times) are set only on the
//! dongle's own command line, by whoever controls its SD card: no request changes them.

use vbzkey_protocol::wire::Request;

/// Where a request may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Also outside a session, even when hosts are paired: what a host asks before its
    /// handshake.
    Plain,
    /// Inside a paired host's session once any host is paired, and always on TCP.
    Session,
    /// As `Session`, and inside an encrypted session even while no host is paired: what
    /// opens an admin window, which only a session ties to one program on a USB link.
    OwnSession,
}

/// The state and credential a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing.
    Nothing,
    /// A dongle without keys (init, restore, the target of a clone).
    Uninitialised,
    /// A key store, in any lock state.
    Initialised,
    /// A key store whose staff credential can be presented (its lock-out is the handler's
    /// answer, as the counting is).
    StaffCredential,
    /// A key store whose admin credential is not locked out (to present it).
    AdminCredential,
    /// The staff unlock (the staff PIN, or a store without one).
    StaffUnlocked,
    /// An open admin window of the asking connection.
    Admin,
    /// An admin window or, when the admin credential cannot be given (admin locked out, key
    /// store damaged, uninitialised, audit log broken), nothing: the way back for a dongle
    /// nobody can administer. Only `FactoryReset`, and always with the button.
    AdminOrRecovery,
}

impl Needs {
    /// Whether meeting this opens the key store's slots: refused while the store needs a
    /// device secret the firmware lacks.
    pub fn opens_keys(self) -> bool {
        match self {
            Needs::Nothing | Needs::Uninitialised | Needs::Initialised => false,
            Needs::StaffCredential
            | Needs::AdminCredential
            | Needs::StaffUnlocked
            | Needs::Admin
            | Needs::AdminOrRecovery => true,
        }
    }
}

/// Whether the request needs a press of the dongle's button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// Never.
    Never,
    /// Always.
    Always,
    /// When the batch holds more records than `Config::confirm_batch_over`.
    LargeBatch,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// Where it may come from.
    pub access: Access,
    /// State and credential.
    pub needs: Needs,
    /// Physical presence.
    pub button: Button,
    /// Whether it runs while the audit log fails verification: only requests that neither
    /// use nor change keys, credentials or pairings do.
    pub on_broken_log: bool,
    /// Whether it is key use, which extends the idle time of the keys it used. Status reads
    /// never are: a page polling `/v1/status` must not keep the dongle unlocked.
    pub key_use: bool,
    /// Whether it writes audit lines, and so costs a token of the log bucket, taken before it
    /// runs (a refusal then changes nothing: no PIN try, no state). What runs on a broken log
    /// writes none (it cannot), but the factory reset that starts a new log.
    pub logs: bool,
}

const fn rule(access: Access, needs: Needs, button: Button, on_broken_log: bool) -> Requirement {
    Requirement { access, needs, button, on_broken_log, key_use: false, logs: !on_broken_log }
}

/// The requirement of `req`.
pub fn requirement(req: &Request) -> Requirement {
    use Access::{OwnSession, Plain, Session};
    use Button::{Always, LargeBatch, Never};
    use Needs::*;
    match req {
        Request::Hello | Request::DeviceKey => rule(Plain, Nothing, Never, true),
        Request::Init { .. }
        | Request::Restore { .. }
        | Request::CloneBegin
        | Request::CloneImport { .. } => rule(Session, Uninitialised, Never, false),
        Request::AdminAuth { .. } => rule(OwnSession, AdminCredential, Never, false),
        Request::Unlock { .. } => {
            Requirement { key_use: true, ..rule(Session, StaffCredential, Never, false) }
        }
        Request::Lock
        | Request::EndAdmin
        | Request::AuditTail { .. }
        | Request::AuditRead { .. }
        | Request::Pairings => rule(Session, Nothing, Never, true),
        Request::PublicKeys => rule(Session, Initialised, Never, true),
        Request::UnsealBatch { .. } => {
            Requirement { key_use: true, ..rule(Session, StaffUnlocked, LargeBatch, false) }
        }
        Request::Rewrap { .. } => {
            Requirement { key_use: true, ..rule(Session, Admin, Never, false) }
        }
        Request::Rotate | Request::Retire { .. } => rule(Session, Admin, Never, false),
        Request::Backup { .. }
        | Request::CloneExport { .. }
        | Request::Pair { .. }
        | Request::Unpair { .. }
        | Request::SetStaffPin { .. }
        | Request::ChangeAdminPin { .. } => rule(Session, Admin, Always, false),
        Request::FactoryReset => {
            Requirement { logs: true, ..rule(Session, AdminOrRecovery, Always, true) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbzkey_protocol::wire::Pin;

    /// Everything that can move keys out or change who may use them needs the admin window
    /// and the button: the table, checked request by request.
    #[test]
    fn export_and_custody_changes_need_admin_and_the_button() {
        let pin = || Pin::new(b"12345678");
        for req in [
            Request::Backup { threshold: 2, count: 3 },
            Request::CloneExport { to: [1; 32] },
            Request::Pair {
                host_key: [2; 32],
                label: String::new(),
                unlock_secret: vbzkey_protocol::wire::UnlockSecret(zeroize::Zeroizing::new(
                    [3; 32],
                )),
            },
            Request::Unpair { host_key: [2; 32] },
            Request::SetStaffPin { new: None },
            Request::SetStaffPin { new: Some(pin()) },
            Request::ChangeAdminPin { new: pin() },
        ] {
            let r = requirement(&req);
            assert_eq!((r.needs, r.button, r.on_broken_log), (Needs::Admin, Button::Always, false));
        }
        let reset = requirement(&Request::FactoryReset);
        assert_eq!(
            (reset.needs, reset.button, reset.on_broken_log),
            (Needs::AdminOrRecovery, Button::Always, true)
        );
    }

    #[test]
    fn the_staff_pin_opens_records_and_nothing_else() {
        // Every request a staff-unlocked host can run beyond the ones that need nothing.
        let staff_only: Vec<_> = [
            Request::UnsealBatch { items: vec![] },
            Request::Rewrap { items: vec![], new_public_key: [0; 32] },
            Request::Rotate,
            Request::Retire { key_id: vbzkey_protocol::KeyId([0; 8]) },
        ]
        .iter()
        .map(requirement)
        .filter(|r| r.needs == Needs::StaffUnlocked)
        .collect();
        assert_eq!(staff_only.len(), 1);
    }

    #[test]
    fn only_identity_questions_are_served_outside_a_session() {
        assert_eq!(requirement(&Request::Hello).access, Access::Plain);
        assert_eq!(requirement(&Request::DeviceKey).access, Access::Plain);
        assert_eq!(requirement(&Request::Lock).access, Access::Session);
        assert_eq!(requirement(&Request::PublicKeys).access, Access::Session);
    }

    /// Only `Hello`, `DeviceKey`, the session housekeeping, `PublicKeys` and the requests of an
    /// uninitialised dongle get past a missing OTP device secret.
    #[test]
    fn everything_that_opens_keys_waits_for_the_device_secret() {
        let pin = || Pin::new(b"12345678");
        for req in [
            Request::Unlock { pin: pin(), unlock_secret: None },
            Request::AdminAuth { admin_pin: pin(), unlock_secret: None },
            Request::UnsealBatch { items: vec![] },
            Request::Rotate,
            Request::Backup { threshold: 2, count: 3 },
            Request::FactoryReset,
        ] {
            assert!(requirement(&req).needs.opens_keys(), "{req:?}");
        }
        for req in
            [Request::Hello, Request::PublicKeys, Request::Lock, Request::AuditTail { max: 1 }]
        {
            assert!(!requirement(&req).needs.opens_keys(), "{req:?}");
        }
    }

    #[test]
    fn status_reads_are_not_key_use() {
        for req in
            [Request::Hello, Request::PublicKeys, Request::AuditTail { max: 1 }, Request::Pairings]
        {
            assert!(!requirement(&req).key_use);
        }
        assert!(requirement(&Request::UnsealBatch { items: vec![] }).key_use);
    }
}
