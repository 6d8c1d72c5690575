//! Stretching a PIN or passphrase with Argon2id (RFC 9106), one parameter type and one
//! function for every part that stretches a secret: the dongle's key store and admin PIN, and
//! the workstation's passphrase key and key file. The parameters travel with what they
//! protect (in the key store's header, in a key file's JSON), so the cost can be re-tuned
//! without breaking what was written before.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Length of a stretched secret.
pub const STRETCHED_LEN: usize = 32;

/// Argon2id cost. The field names are part of the key-file JSON format (`softkey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2idParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

/// Why a secret could not be stretched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    /// The cost is outside what Argon2 allows (read from a damaged or hostile file).
    #[error("the Argon2id parameters are invalid")]
    BadParams,
    /// The salt is shorter than Argon2 allows (8 bytes).
    #[error("the Argon2id salt is invalid")]
    BadSalt,
}

impl Argon2idParams {
    /// For workstations: 64 MiB, 3 passes (RFC 9106's second recommended option), a few
    /// hundred milliseconds on a desktop CPU.
    pub const WORKSTATION: Self = Self { m_kib: 64 * 1024, t: 3, p: 1 };
    /// The dongle's PIN checks: 64 MiB and 3 passes. One guess costs a card thief 0.18–0.19 s
    /// of an x86 core (docs/THREAT-MODEL.md, row 3c); an unlock takes a few seconds on the Pi
    /// Zero (ARM1176 at 1 GHz, 512 MB), once a shift. `vbzkey-firmware self-test --kdf-timing`
    /// re-measures on the device.
    pub const PI_ZERO: Self = Self { m_kib: 64 * 1024, t: 3, p: 1 };
    /// For tests only: the minimum Argon2 allows.
    pub const TEST_ONLY_WEAK: Self = Self { m_kib: 64, t: 1, p: 1 };

    fn argon2(&self) -> Result<argon2::Argon2<'static>, KdfError> {
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(STRETCHED_LEN))
            .map_err(|_| KdfError::BadParams)?;
        Ok(argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params))
    }

    /// The most a key file on a workstation may ask for: 1 GiB, 16 passes, 8 lanes. A file
    /// asking for more was edited to make opening it exhaust the machine.
    pub const WORKSTATION_MAX: Self = Self { m_kib: 1024 * 1024, t: 16, p: 8 };

    /// Whether Argon2 accepts these parameters and none exceeds `max`'s (check a cost read
    /// from a file against what the machine should run).
    pub fn check_within(&self, max: &Self) -> Result<(), KdfError> {
        if self.m_kib > max.m_kib || self.t > max.t || self.p > max.p {
            return Err(KdfError::BadParams);
        }
        self.check()
    }

    /// Whether Argon2 accepts these parameters (check them when reading them from a file).
    pub fn check(&self) -> Result<(), KdfError> {
        self.argon2().map(|_| ())
    }

    /// Argon2id(`secret`, `salt`) with this cost: 32 bytes, wiped on drop.
    pub fn stretch(
        &self,
        secret: &[u8],
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; STRETCHED_LEN]>, KdfError> {
        let mut out = Zeroizing::new([0u8; STRETCHED_LEN]);
        self.argon2()?
            .hash_password_into(secret, salt, &mut out[..])
            .map_err(|_| KdfError::BadSalt)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretching_matches_the_rfc_9106_construction() {
        // Argon2id v0x13, m=64 KiB, t=1, p=1, 32-byte output, computed independently with the
        // reference implementation (Debian's `argon2` package):
        //   echo -n pin | argon2 saltsalt -id -t 1 -k 64 -p 1 -l 32 -r
        let got = Argon2idParams::TEST_ONLY_WEAK.stretch(b"pin", b"saltsalt").unwrap();
        assert_eq!(
            crate::audit::hex(&got[..]),
            "66a4f8c7a03f95f4f23d36cc90a2a65cf283018d92fb75eaacb6991391abdeb1"
        );
        assert_ne!(*got, *Argon2idParams::TEST_ONLY_WEAK.stretch(b"pin", b"saltsalu").unwrap());
        assert_ne!(*got, *Argon2idParams::TEST_ONLY_WEAK.stretch(b"pio", b"saltsalt").unwrap());
    }

    #[test]
    fn invalid_parameters_and_salts_are_errors_not_panics() {
        let zero_passes = Argon2idParams { m_kib: 64, t: 0, p: 1 };
        assert_eq!(zero_passes.check(), Err(KdfError::BadParams));
        assert_eq!(zero_passes.stretch(b"pin", b"saltsalt").unwrap_err(), KdfError::BadParams);
        let tiny_memory = Argon2idParams { m_kib: 1, t: 1, p: 1 };
        assert_eq!(tiny_memory.check(), Err(KdfError::BadParams));
        let no_lanes = Argon2idParams { m_kib: 64, t: 1, p: 0 };
        assert_eq!(no_lanes.check(), Err(KdfError::BadParams));
        assert_eq!(
            Argon2idParams::TEST_ONLY_WEAK.stretch(b"pin", b"short").unwrap_err(),
            KdfError::BadSalt
        );
        for p in
            [Argon2idParams::WORKSTATION, Argon2idParams::PI_ZERO, Argon2idParams::TEST_ONLY_WEAK]
        {
            assert_eq!(p.check(), Ok(()));
        }
    }

    #[test]
    fn a_cost_beyond_the_machines_limit_is_refused_before_any_work() {
        let max = Argon2idParams::WORKSTATION_MAX;
        assert_eq!(Argon2idParams::WORKSTATION.check_within(&max), Ok(()));
        for too_much in [
            Argon2idParams { m_kib: max.m_kib + 1, ..Argon2idParams::WORKSTATION },
            Argon2idParams { t: 17, ..Argon2idParams::WORKSTATION },
            Argon2idParams { p: 9, ..Argon2idParams::WORKSTATION },
        ] {
            assert_eq!(too_much.check_within(&max), Err(KdfError::BadParams), "{too_much:?}");
        }
    }
}
