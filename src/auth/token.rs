//! Tinode-compatible authentication tokens: minting and verification of the 50-byte
//! `uid | expires | level | serial | features` record signed with HMAC-SHA256.
//!
//! Tokens are minted with the current key; keys retired by a rotation still verify the tokens
//! they signed until the end of their grace ([`TokenIssuer::with_retired`]), then never again.
//!
//! It deliberately knows nothing about base64 (the wire layer encodes tokens as standard base64),
//! about users (a valid token for a deleted or suspended user still verifies; the caller checks
//! the store) or about where the key comes from (see [`super::keys`]).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::AuthError;
use crate::access::AuthLevel;
use crate::ids::{UnixMillis, UserId};

type HmacSha256 = Hmac<Sha256>;

/// Length of the signed part: uid u64 | expires u32 | level u16 | serial u16 | features u16.
const LAYOUT_LEN: usize = 18;
/// Length of the HMAC-SHA256 signature.
const SIG_LEN: usize = 32;
/// Total length of a token in bytes (68 characters of standard base64).
pub const TOKEN_LEN: usize = LAYOUT_LEN + SIG_LEN;

/// Feature bit: the user's credentials were already validated when the token was issued.
pub const VALIDATED: u16 = 1;
/// Feature bit: restricted token (credential confirmation, password reset); it must not
/// authenticate a session.
pub const NO_LOGIN: u16 = 2;

/// Recommended minimum key length in bytes (the reference server refuses shorter keys).
pub const MIN_KEY_LEN: usize = 32;

/// Mints and verifies tokens with one key and serial number, and verifies tokens of retired
/// keys until their grace ends.
///
/// Changing the serial invalidates every token issued before; changing the key does too,
/// unless the old key is kept as a retired one.
#[derive(Clone)]
pub struct TokenIssuer {
    /// HMAC state already keyed with the token key; cloned for each token (saves the key setup).
    mac: HmacSha256,
    /// Retired keys' HMAC states and the instant after which their tokens are refused.
    retired: Vec<(HmacSha256, UnixMillis)>,
    serial: u16,
    lifetime_secs: u64,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key", &"<redacted>")
            .field("retired", &self.retired.len())
            .field("serial", &self.serial)
            .field("lifetime_secs", &self.lifetime_secs)
            .finish()
    }
}

/// What a verified token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    /// The user the token was issued to.
    pub uid: UserId,
    /// The authentication level embedded at issue time.
    pub level: AuthLevel,
    /// Expiry, whole seconds expressed in milliseconds.
    pub expires: UnixMillis,
    /// Feature bits ([`VALIDATED`], [`NO_LOGIN`]); unknown bits are preserved.
    pub features: u16,
}

impl TokenClaims {
    /// True when the [`VALIDATED`] bit is set.
    pub fn validated(&self) -> bool {
        self.features & VALIDATED != 0
    }

    /// True when the [`NO_LOGIN`] bit is set (the token must not authenticate a session).
    pub fn no_login(&self) -> bool {
        self.features & NO_LOGIN != 0
    }
}

impl TokenIssuer {
    /// Creates an issuer. `key` should be at least [`MIN_KEY_LEN`] bytes and `lifetime_secs`
    /// positive; validating that is the configuration's job (any key length works technically).
    pub fn new(key: Vec<u8>, serial: u16, lifetime_secs: u64) -> TokenIssuer {
        // HMAC accepts keys of any length (long keys are hashed, short ones padded), so this
        // cannot fail; the match only avoids an `expect`.
        TokenIssuer {
            mac: keyed(&key),
            retired: Vec::new(),
            serial,
            lifetime_secs,
        }
    }

    /// Also accepts tokens signed with the retired `key` (same serial, unexpired) while the
    /// verification time is before `until` (the rotation plus its grace); never mints with it.
    pub fn with_retired(mut self, key: &[u8], until: UnixMillis) -> TokenIssuer {
        self.retired.push((keyed(key), until));
        self
    }

    /// The configured token lifetime in seconds.
    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs
    }

    /// Mints a token with no feature bits for `uid` at `level`, valid for the configured lifetime
    /// from `now`. Returns the 50 raw bytes and the expiry (whole seconds, as milliseconds).
    pub fn mint(&self, uid: UserId, level: AuthLevel, now: UnixMillis) -> (Vec<u8>, UnixMillis) {
        self.mint_with_features(uid, level, 0, now)
    }

    /// Like [`TokenIssuer::mint`] but with explicit feature bits ([`VALIDATED`], [`NO_LOGIN`]).
    /// The expiry saturates at the largest `u32` second (year 2106).
    pub fn mint_with_features(
        &self,
        uid: UserId,
        level: AuthLevel,
        features: u16,
        now: UnixMillis,
    ) -> (Vec<u8>, UnixMillis) {
        let expires_secs = (now.0 / 1000).saturating_add(self.lifetime_secs);
        let expires_secs = u32::try_from(expires_secs).unwrap_or(u32::MAX);

        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.extend_from_slice(&uid.0.to_le_bytes());
        token.extend_from_slice(&expires_secs.to_le_bytes());
        token.extend_from_slice(&level.to_u16().to_le_bytes());
        token.extend_from_slice(&self.serial.to_le_bytes());
        token.extend_from_slice(&features.to_le_bytes());

        let mut mac = self.mac.clone();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());

        (token, UnixMillis(u64::from(expires_secs) * 1000))
    }

    /// Verifies raw token bytes at time `now`.
    ///
    /// * not exactly 50 bytes, or a level other than 0/10/20/30 → [`AuthError::Malformed`];
    /// * signature mismatch (constant-time comparison) with the current key and with every
    ///   retired key still in its grace at `now`, other serial number, or expiry less than one
    ///   second after `now` → [`AuthError::Failed`].
    ///
    /// A zero uid is not rejected here; the caller's user lookup will fail for it.
    pub fn verify(&self, token: &[u8], now: UnixMillis) -> Result<TokenClaims, AuthError> {
        if token.len() != TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let (body, sig) = token
            .split_first_chunk::<LAYOUT_LEN>()
            .ok_or(AuthError::Malformed)?;
        let layout = Layout::decode(body).ok_or(AuthError::Malformed)?;
        let level = AuthLevel::from_u16(layout.level).ok_or(AuthError::Malformed)?;

        // Each comparison is constant-time; which key matched is not a secret.
        let signed_by = |mac: &HmacSha256| {
            let mut mac = mac.clone();
            mac.update(body);
            mac.verify_slice(sig).is_ok()
        };
        let current = signed_by(&self.mac);
        let retired = || {
            let mut live = self.retired.iter().filter(|(_, until)| now < *until);
            live.any(|(mac, _)| signed_by(mac))
        };
        if !current && !retired() {
            return Err(AuthError::Failed);
        }

        if layout.serial != self.serial {
            return Err(AuthError::Failed);
        }
        // Same rule as the reference server: rejected if it expires before now + 1 s.
        let expires = UnixMillis(u64::from(layout.expires) * 1000);
        if expires < now.plus_ms(1000) {
            return Err(AuthError::Failed);
        }

        Ok(TokenClaims {
            uid: UserId(layout.uid),
            level,
            expires,
            features: layout.features,
        })
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed, short ones padded), so this cannot
    // fail; the match only avoids an `expect`.
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// The unsigned 18-byte header, decoded.
struct Layout {
    uid: u64,
    expires: u32,
    level: u16,
    serial: u16,
    features: u16,
}

impl Layout {
    fn decode(b: &[u8; LAYOUT_LEN]) -> Option<Layout> {
        let (uid, b) = b.split_first_chunk::<8>()?;
        let (expires, b) = b.split_first_chunk::<4>()?;
        let (level, b) = b.split_first_chunk::<2>()?;
        let (serial, b) = b.split_first_chunk::<2>()?;
        let (features, _) = b.split_first_chunk::<2>()?;
        Some(Layout {
            uid: u64::from_le_bytes(*uid),
            expires: u32::from_le_bytes(*expires),
            level: u16::from_le_bytes(*level),
            serial: u16::from_le_bytes(*serial),
            features: u16::from_le_bytes(*features),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    const NOW: UnixMillis = UnixMillis(1_700_000_000_123);
    const LIFETIME: u64 = 1_209_600;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(vec![7u8; 32], 1, LIFETIME)
    }

    #[test]
    fn round_trip() {
        let iss = issuer();
        let uid = UserId(0x0102_0304_0506_0708);
        let (tok, expires) = iss.mint(uid, AuthLevel::Auth, NOW);
        assert_eq!(tok.len(), TOKEN_LEN);
        assert_eq!(expires, UnixMillis((1_700_000_000 + LIFETIME) * 1000));
        let claims = iss.verify(&tok, NOW).unwrap();
        assert_eq!(
            claims,
            TokenClaims {
                uid,
                level: AuthLevel::Auth,
                expires,
                features: 0
            }
        );
        assert!(!claims.validated());
        assert!(!claims.no_login());
    }

    #[test]
    fn layout_is_little_endian_as_documented() {
        let iss = issuer();
        let (tok, _) = iss.mint_with_features(
            UserId(0x1122_3344_5566_7788),
            AuthLevel::Root,
            VALIDATED | NO_LOGIN,
            UnixMillis(1000 * 1000),
        );
        assert_eq!(
            &tok[0..8],
            &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!(&tok[8..12], &(1000u32 + LIFETIME as u32).to_le_bytes());
        assert_eq!(&tok[12..14], &[30, 0]);
        assert_eq!(&tok[14..16], &[1, 0]);
        assert_eq!(&tok[16..18], &[3, 0]);
        let mut mac = HmacSha256::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(&tok[..18]);
        assert_eq!(&tok[18..], mac.finalize().into_bytes().as_slice());
        let claims = iss.verify(&tok, UnixMillis(1000 * 1000)).unwrap();
        assert!(claims.validated() && claims.no_login());
        assert_eq!(claims.level, AuthLevel::Root);
    }

    #[test]
    fn every_level_round_trips() {
        let iss = issuer();
        for level in [
            AuthLevel::None,
            AuthLevel::Anon,
            AuthLevel::Auth,
            AuthLevel::Root,
        ] {
            let (tok, _) = iss.mint(UserId(5), level, NOW);
            assert_eq!(iss.verify(&tok, NOW).unwrap().level, level);
        }
    }

    #[test]
    fn std_base64_is_68_chars_with_one_pad() {
        let (tok, _) = issuer().mint(UserId(42), AuthLevel::Auth, NOW);
        let s = STANDARD.encode(&tok);
        assert_eq!(s.len(), 68);
        assert!(s.ends_with('=') && !s.ends_with("=="));
        assert_eq!(s.matches('=').count(), 1);
    }

    #[test]
    fn any_tampered_byte_fails() {
        let iss = issuer();
        let (tok, _) = iss.mint(UserId(42), AuthLevel::Auth, NOW);
        for i in 0..TOKEN_LEN {
            // Skip the level bytes: changing them gives Malformed (checked below).
            if i == 12 || i == 13 {
                continue;
            }
            let mut bad = tok.clone();
            bad[i] ^= 0x01;
            assert_eq!(iss.verify(&bad, NOW), Err(AuthError::Failed), "byte {i}");
        }
        // A valid-looking level change is caught by the signature.
        let mut bad = tok.clone();
        bad[12] = 30;
        assert_eq!(iss.verify(&bad, NOW), Err(AuthError::Failed));
    }

    #[test]
    fn wrong_key_fails() {
        let (tok, _) = issuer().mint(UserId(42), AuthLevel::Auth, NOW);
        let other = TokenIssuer::new(vec![8u8; 32], 1, LIFETIME);
        assert_eq!(other.verify(&tok, NOW), Err(AuthError::Failed));
    }

    #[test]
    fn wrong_serial_fails() {
        let (tok, _) = issuer().mint(UserId(42), AuthLevel::Auth, NOW);
        let other = TokenIssuer::new(vec![7u8; 32], 2, LIFETIME);
        assert_eq!(other.verify(&tok, NOW), Err(AuthError::Failed));
    }

    #[test]
    fn expired_fails() {
        let iss = TokenIssuer::new(vec![7u8; 32], 1, 10);
        let now = UnixMillis(1_000_000);
        let (tok, expires) = iss.mint(UserId(42), AuthLevel::Auth, now);
        assert_eq!(expires, UnixMillis(1_010_000));
        assert!(iss.verify(&tok, UnixMillis(1_008_999)).is_ok());
        assert!(iss.verify(&tok, UnixMillis(1_009_000)).is_ok());
        // Within one second of expiry, at expiry, and after: refused.
        assert_eq!(
            iss.verify(&tok, UnixMillis(1_009_001)),
            Err(AuthError::Failed)
        );
        assert_eq!(
            iss.verify(&tok, UnixMillis(1_010_000)),
            Err(AuthError::Failed)
        );
        assert_eq!(
            iss.verify(&tok, UnixMillis(9_999_999)),
            Err(AuthError::Failed)
        );
        // Zero lifetime: dead on arrival.
        let zero = TokenIssuer::new(vec![7u8; 32], 1, 0);
        let (tok, _) = zero.mint(UserId(42), AuthLevel::Auth, now);
        assert_eq!(zero.verify(&tok, now), Err(AuthError::Failed));
    }

    #[test]
    fn expiry_saturates_instead_of_wrapping() {
        let iss = TokenIssuer::new(vec![7u8; 32], 1, u64::MAX);
        let (tok, expires) = iss.mint(UserId(42), AuthLevel::Auth, NOW);
        assert_eq!(expires, UnixMillis(u64::from(u32::MAX) * 1000));
        assert!(iss.verify(&tok, NOW).is_ok());
    }

    #[test]
    fn wrong_length_is_malformed() {
        let iss = issuer();
        let (tok, _) = iss.mint(UserId(42), AuthLevel::Auth, NOW);
        assert_eq!(iss.verify(&[], NOW), Err(AuthError::Malformed));
        assert_eq!(iss.verify(&tok[..49], NOW), Err(AuthError::Malformed));
        assert_eq!(iss.verify(&tok[..18], NOW), Err(AuthError::Malformed));
        let mut long = tok.clone();
        long.push(0);
        assert_eq!(iss.verify(&long, NOW), Err(AuthError::Malformed));
    }

    #[test]
    fn unknown_level_is_malformed() {
        let iss = issuer();
        let (tok, _) = iss.mint(UserId(42), AuthLevel::Auth, NOW);
        for level in [1u16, 15, 31, 40, 0xffff] {
            let mut bad = tok.clone();
            bad[12..14].copy_from_slice(&level.to_le_bytes());
            assert_eq!(
                iss.verify(&bad, NOW),
                Err(AuthError::Malformed),
                "level {level}"
            );
        }
    }

    #[test]
    fn a_retired_key_verifies_until_its_grace_ends() {
        let old = TokenIssuer::new(vec![7u8; 32], 1, LIFETIME);
        let (tok, expires) = old.mint(UserId(42), AuthLevel::Auth, NOW);
        let until = NOW.plus_ms(3_600_000);
        let rotated = TokenIssuer::new(vec![9u8; 32], 1, LIFETIME).with_retired(&[7u8; 32], until);
        let claims = rotated.verify(&tok, NOW).expect("within the grace");
        assert_eq!((claims.uid, claims.expires), (UserId(42), expires));
        assert!(rotated.verify(&tok, UnixMillis(until.0 - 1)).is_ok());
        assert_eq!(rotated.verify(&tok, until), Err(AuthError::Failed));
        assert_eq!(
            rotated.verify(&tok, until.plus_ms(1)),
            Err(AuthError::Failed)
        );
        // New tokens are signed with the current key only.
        let (fresh, _) = rotated.mint(UserId(42), AuthLevel::Auth, NOW);
        assert_eq!(old.verify(&fresh, NOW), Err(AuthError::Failed));
        assert!(rotated.verify(&fresh, until.plus_ms(1)).is_ok());
        // The retired key does not lift the other checks: serial and expiry.
        let other_serial = TokenIssuer::new(vec![7u8; 32], 2, LIFETIME);
        let (tok2, _) = other_serial.mint(UserId(42), AuthLevel::Auth, NOW);
        assert_eq!(rotated.verify(&tok2, NOW), Err(AuthError::Failed));
        let short = TokenIssuer::new(vec![7u8; 32], 1, 10);
        let (tok3, _) = short.mint(UserId(42), AuthLevel::Auth, NOW);
        assert_eq!(
            rotated.verify(&tok3, NOW.plus_ms(20_000)),
            Err(AuthError::Failed)
        );
        // A key never configured is refused whatever the time.
        let stranger = TokenIssuer::new(vec![8u8; 32], 1, LIFETIME);
        let (tok4, _) = stranger.mint(UserId(42), AuthLevel::Auth, NOW);
        assert_eq!(rotated.verify(&tok4, NOW), Err(AuthError::Failed));
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let s = format!("{:?}", TokenIssuer::new(b"super-secret-key".to_vec(), 1, 1));
        assert!(!s.contains("super"), "{s}");
    }
}
