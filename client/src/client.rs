//! A dongle client: one link kept open and reopened when it dies, the retry policy, and one
//! typed method per request.
//!
//! ## When a request is sent again
//!
//! A link that worked before can be dead by the next request (the dongle was unplugged and
//! plugged back, the emulator restarted). The client then drops it, opens a fresh one and
//! sends the request **once** more, but only when that cannot make the dongle act twice:
//!
//! | the reused link failed | sent again |
//! | --- | --- |
//! | while sending (the request never reached the dongle) | every request |
//! | while waiting for the answer (it may have acted) | only requests that are safe to repeat ([`replay_safe`]): reads, `Lock`, `UnsealBatch` |
//! | with an invalid answer, or a refused session | never |
//!
//! A link opened for this very request is never retried: a fresh failure is a real one. A
//! wrong PIN is therefore never counted twice, and `Rotate` or `Backup` never run twice.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use vbzkey_protocol::share::Share;
use vbzkey_protocol::wire::{
    DongleError, HelloInfo, ItemError, KeyInfo, PairingInfo, Pin, Plaintext, Request, Response,
    SealedItem, UnlockSecret,
};
use vbzkey_protocol::{KeyId, PublicKey};

use crate::addr::DongleAddr;
use crate::connector::{ConnectOptions, Connector, connector};
use crate::error::{ClientError, LinkError};
use crate::link::Link;

struct Open {
    link: Link,
    generation: u64,
}

/// Told when the dongle waits for a press of its button (its timeout in seconds).
type PresenceHook = Arc<dyn Fn(u16) + Send + Sync>;

/// A client for one dongle. Cheap to create: nothing is opened until the first request.
pub struct Client {
    connector: Box<dyn Connector>,
    open: Mutex<Option<Open>>,
    /// This host's unlock secret (split custody), sent with `Unlock` and `AdminAuth`.
    unlock_secret: Option<UnlockSecret>,
    presence: Option<PresenceHook>,
    /// How long one request may wait, in all, when the dongle refuses it for its rate limit.
    rate_wait: Duration,
}

/// The answer to `AuditTail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTail {
    /// The last lines, oldest first, exactly as stored.
    pub lines: Vec<String>,
    /// The hash of the newest line (zeros for an empty log).
    pub head: [u8; 32],
    /// Lines in the whole log.
    pub total: u64,
}

/// A page of the audit log (`AuditRead`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The head the first line chains from.
    pub prev_head: [u8; 32],
    /// Lines from the asked entry on, oldest first, exactly as stored.
    pub lines: Vec<String>,
    /// The hash of the newest line of the whole log.
    pub head: [u8; 32],
    /// Lines in the whole log.
    pub total: u64,
}

/// Whether `req` may be sent again after its answer was lost: repeating it leaves the dongle
/// as one request would (reads, `Lock`), or only repeats an answer (`UnsealBatch`: the same
/// records open again, counted against the rate limit and logged once more).
pub fn replay_safe(req: &Request) -> bool {
    matches!(
        req,
        Request::Hello
            | Request::PublicKeys
            | Request::AuditTail { .. }
            | Request::AuditRead { .. }
            | Request::DeviceKey
            | Request::Pairings
            | Request::Lock
            | Request::EndAdmin
            | Request::UnsealBatch { .. }
    )
}

/// The name of an answer, for `ClientError::Unexpected` (never its contents: it may carry a
/// plaintext).
fn answer_name(r: &Response) -> &'static str {
    match r {
        Response::Hello(_) => "Hello",
        Response::Ok => "Ok",
        Response::PublicKeys(_) => "PublicKeys",
        Response::Unsealed(_) => "Unsealed",
        Response::Rewrapped(_) => "Rewrapped",
        Response::AuditTail { .. } => "AuditTail",
        Response::Shares(_) => "Shares",
        Response::CloneKey(_) => "CloneKey",
        Response::CloneBlob(_) => "CloneBlob",
        Response::DeviceKey(_) => "DeviceKey",
        Response::Pairings(_) => "Pairings",
        Response::Error(_) => "Error",
        Response::PresenceNeeded { .. } => "PresenceNeeded",
        Response::AuditLines { .. } => "AuditLines",
    }
}

impl Client {
    /// A client that opens links with `connector` (as a host without a share: no unlock
    /// secret).
    pub fn new(connector: Box<dyn Connector>) -> Self {
        Client {
            connector,
            open: Mutex::new(None),
            unlock_secret: None,
            presence: None,
            rate_wait: Duration::ZERO,
        }
    }

    /// A client for the dongle at `addr`; with host keys, it also gives the host's unlock
    /// secret when it unlocks (split custody).
    pub fn for_addr(addr: &DongleAddr, opts: ConnectOptions) -> Self {
        let unlock_secret = opts.keys.as_ref().map(|k| k.unlock_secret());
        Client { unlock_secret, ..Self::new(connector(addr, opts)) }
    }

    /// Call `hook` whenever the dongle asks for its button (to tell the user to press it).
    pub fn on_presence(mut self, hook: impl Fn(u16) + Send + Sync + 'static) -> Self {
        self.presence = Some(Arc::new(hook));
        self
    }

    fn slot(&self) -> MutexGuard<'_, Option<Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connect(&self, generation: u64) -> Result<Open, LinkError> {
        let mut link = self.connector.connect()?;
        if let Some(hook) = &self.presence {
            let hook = Arc::clone(hook);
            link.on_presence(Box::new(move |secs| hook(secs)));
        }
        Ok(Open { link, generation })
    }

    /// Send `req` under the retry policy (see the module docs); returns whatever the dongle
    /// answered, `Response::Error` included.
    pub fn exchange(&self, req: &Request) -> Result<Response, LinkError> {
        let mut slot = self.slot();
        let generation = self.connector.generation();
        if slot.as_ref().is_some_and(|o| o.generation != generation) {
            *slot = None;
        }
        let reused = slot.is_some();
        let open = match slot.take() {
            Some(open) => open,
            None => self.connect(generation)?,
        };
        let open = slot.insert(open);
        let err = match open.link.call(req) {
            Ok(resp) => return Ok(resp),
            Err(e) => e,
        };
        tracing::warn!("{}: {err}", open.link.describe());
        *slot = None;
        let again = reused
            && match &err {
                LinkError::Send(_) => true,
                LinkError::Recv(_) => replay_safe(req),
                _ => false,
            };
        if !again {
            return Err(err);
        }
        let open = slot.insert(self.connect(generation)?);
        let result = open.link.call(req);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// Send `req` and keep the answer `pick` accepts; the dongle's refusal comes back as
    /// `ClientError::Dongle`, any other answer as `ClientError::Unexpected`.
    fn ask<T>(
        &self,
        req: &Request,
        name: &'static str,
        pick: impl FnOnce(Response) -> Result<T, Response>,
    ) -> Result<T, ClientError> {
        let mut waited = Duration::ZERO;
        loop {
            return match self.exchange(req)? {
                // Refused for the rate before anything ran: the same request again is safe.
                Response::Error(DongleError::RateLimited { retry_after_ms })
                    if waited < self.rate_wait =>
                {
                    let pause = Duration::from_millis(u64::from(retry_after_ms).clamp(50, 5_000));
                    std::thread::sleep(pause);
                    waited += pause;
                    continue;
                }
                Response::Error(e) => Err(ClientError::Dongle(e)),
                other => pick(other).map_err(|r| ClientError::Unexpected {
                    request: name,
                    answer: answer_name(&r),
                }),
            };
        }
    }

    /// Wait (up to `total` per request) and ask again when the dongle refuses a request for its
    /// rate limit, instead of failing: for long jobs such as a re-wrap. The bridge does not
    /// wait: a staff page is told to slow down.
    pub fn waiting_on_rate_limit(mut self, total: Duration) -> Self {
        self.rate_wait = total;
        self
    }

    fn ask_ok(&self, req: &Request, name: &'static str) -> Result<(), ClientError> {
        self.ask(req, name, |r| match r {
            Response::Ok => Ok(()),
            r => Err(r),
        })
    }

    fn ask_keys(&self, req: &Request, name: &'static str) -> Result<Vec<KeyInfo>, ClientError> {
        self.ask(req, name, |r| match r {
            Response::PublicKeys(k) => Ok(k),
            r => Err(r),
        })
    }

    /// Where the open link goes (`usb:SERIAL`, `unix:/path`, with ` (session)`), if one is open.
    pub fn describe(&self) -> Option<String> {
        self.slot().as_ref().map(|o| o.link.describe())
    }

    /// Serials of the matching dongles present, where the transport can tell.
    pub fn present(&self) -> Vec<String> {
        self.connector.present()
    }

    /// Close the link (the next request opens a new one).
    pub fn close(&self) {
        *self.slot() = None;
    }

    /// Who the dongle is and what state it is in (needs no PIN, and no session).
    pub fn hello(&self) -> Result<HelloInfo, ClientError> {
        self.ask(&Request::Hello, "Hello", |r| match r {
            Response::Hello(h) => Ok(h),
            r => Err(r),
        })
    }

    /// Unlock with the staff PIN (and this host's unlock secret, if it has a host key). A PIN
    /// longer than any PIN is refused here, as the dongle would (it could not even decode it).
    pub fn unlock(&self, pin: Pin) -> Result<(), ClientError> {
        if pin.0.len() > vbzkey_protocol::wire::MAX_PIN_LEN {
            return Err(ClientError::Dongle(DongleError::BadPin));
        }
        let unlock_secret = self.unlock_secret.clone();
        self.ask_ok(&Request::Unlock { pin, unlock_secret }, "Unlock")
    }

    /// Forget the keys until the next unlock.
    pub fn lock(&self) -> Result<(), ClientError> {
        self.ask_ok(&Request::Lock, "Lock")
    }

    /// Prove the admin PIN (with this host's unlock secret, if it has a host key): opens an
    /// admin window for this link only.
    pub fn admin_auth(&self, admin_pin: Pin) -> Result<(), ClientError> {
        let unlock_secret = self.unlock_secret.clone();
        self.ask_ok(&Request::AdminAuth { admin_pin, unlock_secret }, "AdminAuth")
    }

    /// Close this link's admin window.
    pub fn end_admin(&self) -> Result<(), ClientError> {
        self.ask_ok(&Request::EndAdmin, "EndAdmin")
    }

    /// Every key version's public facts.
    pub fn public_keys(&self) -> Result<Vec<KeyInfo>, ClientError> {
        self.ask_keys(&Request::PublicKeys, "PublicKeys")
    }

    /// The key new records are sealed to.
    pub fn active_key(&self) -> Result<KeyInfo, ClientError> {
        self.public_keys()?.into_iter().find(|k| k.active).ok_or(ClientError::NoActiveKey)
    }

    /// Open a batch: one result per item, in order.
    pub fn unseal(
        &self,
        items: Vec<SealedItem>,
    ) -> Result<Vec<Result<Plaintext, ItemError>>, ClientError> {
        self.ask(&Request::UnsealBatch { items }, "UnsealBatch", |r| match r {
            Response::Unsealed(results) => Ok(results),
            r => Err(r),
        })
    }

    /// Re-seal a batch to `to` (one of the dongle's own keys) inside the dongle.
    pub fn rewrap(
        &self,
        items: Vec<SealedItem>,
        to: &PublicKey,
    ) -> Result<Vec<Result<Vec<u8>, ItemError>>, ClientError> {
        let req = Request::Rewrap { items, new_public_key: *to.as_bytes() };
        self.ask(&req, "Rewrap", |r| match r {
            Response::Rewrapped(results) => Ok(results),
            r => Err(r),
        })
    }

    /// The last `max` audit lines and the chain's head.
    pub fn audit_tail(&self, max: u16) -> Result<AuditTail, ClientError> {
        self.ask(&Request::AuditTail { max }, "AuditTail", |r| match r {
            Response::AuditTail { entries, head, total } => {
                Ok(AuditTail { lines: entries.into_iter().map(|e| e.line).collect(), head, total })
            }
            r => Err(r),
        })
    }

    /// Audit lines from entry `from_seq` on (at most `max`; the dongle may give fewer, to fit
    /// one answer).
    pub fn audit_read(&self, from_seq: u64, max: u16) -> Result<AuditPage, ClientError> {
        self.ask(&Request::AuditRead { from_seq, max }, "AuditRead", |r| match r {
            Response::AuditLines { prev_head, entries, head, total } => Ok(AuditPage {
                prev_head,
                lines: entries.into_iter().map(|e| e.line).collect(),
                head,
                total,
            }),
            r => Err(r),
        })
    }

    /// Generate the first key on the device and set both credentials.
    pub fn init(&self, pin: Option<Pin>, admin_pin: Pin) -> Result<Vec<KeyInfo>, ClientError> {
        self.ask_keys(&Request::Init { pin, admin_pin }, "Init")
    }

    /// Set a new staff PIN, or remove it (admin window and the button).
    pub fn set_staff_pin(&self, new: Option<Pin>) -> Result<(), ClientError> {
        self.ask_ok(&Request::SetStaffPin { new }, "SetStaffPin")
    }

    /// Change the admin PIN (admin window and the button).
    pub fn change_admin_pin(&self, new: Pin) -> Result<(), ClientError> {
        self.ask_ok(&Request::ChangeAdminPin { new }, "ChangeAdminPin")
    }

    /// Make a new key version active.
    pub fn rotate(&self) -> Result<Vec<KeyInfo>, ClientError> {
        self.ask_keys(&Request::Rotate, "Rotate")
    }

    /// Delete an old key version.
    pub fn retire(&self, key_id: KeyId) -> Result<(), ClientError> {
        self.ask_ok(&Request::Retire { key_id }, "Retire")
    }

    /// Wipe the key store.
    pub fn factory_reset(&self) -> Result<(), ClientError> {
        self.ask_ok(&Request::FactoryReset, "FactoryReset")
    }

    /// Deal `count` recovery shares, any `threshold` of which rebuild every key version.
    pub fn backup(&self, threshold: u8, count: u8) -> Result<Vec<Share>, ClientError> {
        self.ask(&Request::Backup { threshold, count }, "Backup", |r| match r {
            Response::Shares(s) => Ok(s),
            r => Err(r),
        })
    }

    /// Rebuild the keys from shares into an uninitialised dongle.
    pub fn restore(
        &self,
        shares: Vec<Share>,
        pin: Option<Pin>,
        admin_pin: Pin,
    ) -> Result<Vec<KeyInfo>, ClientError> {
        self.ask_keys(&Request::Restore { shares, pin, admin_pin }, "Restore")
    }

    /// On a clone's target: make a transfer key (kept in the dongle's RAM only).
    pub fn clone_begin(&self) -> Result<PublicKey, ClientError> {
        self.ask(&Request::CloneBegin, "CloneBegin", |r| match r {
            Response::CloneKey(k) => Ok(PublicKey::from_bytes(k)),
            r => Err(r),
        })
    }

    /// On a clone's source: every key version sealed to the target's transfer key.
    pub fn clone_export(&self, to: &PublicKey) -> Result<Vec<u8>, ClientError> {
        self.ask(&Request::CloneExport { to: *to.as_bytes() }, "CloneExport", |r| match r {
            Response::CloneBlob(b) => Ok(b),
            r => Err(r),
        })
    }

    /// On a clone's target: install the key set from `blob`.
    pub fn clone_import(
        &self,
        blob: Vec<u8>,
        pin: Option<Pin>,
        admin_pin: Pin,
    ) -> Result<Vec<KeyInfo>, ClientError> {
        self.ask_keys(&Request::CloneImport { blob, pin, admin_pin }, "CloneImport")
    }

    /// The dongle's device key (what hosts pin for their sessions).
    pub fn device_key(&self) -> Result<PublicKey, ClientError> {
        self.ask(&Request::DeviceKey, "DeviceKey", |r| match r {
            Response::DeviceKey(k) => Ok(PublicKey::from_bytes(k)),
            r => Err(r),
        })
    }

    /// Pair a host, giving the dongle the host's unlock secret to wrap its half of the
    /// master key under (admin window and the button).
    pub fn pair(
        &self,
        host_key: &PublicKey,
        label: String,
        unlock_secret: UnlockSecret,
    ) -> Result<(), ClientError> {
        let req = Request::Pair { host_key: *host_key.as_bytes(), label, unlock_secret };
        self.ask_ok(&req, "Pair")
    }

    /// Remove a pairing.
    pub fn unpair(&self, host_key: &PublicKey) -> Result<(), ClientError> {
        self.ask_ok(&Request::Unpair { host_key: *host_key.as_bytes() }, "Unpair")
    }

    /// The paired hosts.
    pub fn pairings(&self) -> Result<Vec<PairingInfo>, ClientError> {
        self.ask(&Request::Pairings, "Pairings", |r| match r {
            Response::Pairings(p) => Ok(p),
            r => Err(r),
        })
    }
}
