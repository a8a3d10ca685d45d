//! API key validation (and generation) in the reference server's format: 24 bytes, URL-safe
//! base64, signed with HMAC-MD5 keyed by the configured salt.
//!
//! It only answers "is this key valid"; finding the key in headers, query, form or cookie and
//! answering 403 is the transport's job. The `isRoot` byte is parsed by nobody, as upstream.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::Md5;

type HmacMd5 = Hmac<Md5>;

/// Decoded key length: version(1) | app id(4, deprecated) | sequence(2) | isRoot(1) | signature(16).
const KEY_LEN: usize = 24;
/// Length of the signed prefix.
const SIGNED_LEN: usize = 8;
/// The only key format version.
const VERSION: u8 = 1;
/// Longest string worth decoding: 24 bytes are 32 characters; anything much longer is junk.
const MAX_ENCODED_LEN: usize = 40;

/// URL-safe base64 that accepts input with or without trailing `=` padding.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks API keys against one salt.
#[derive(Clone)]
pub struct ApiKeyChecker {
    salt: Vec<u8>,
}

impl fmt::Debug for ApiKeyChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyChecker")
            .field("salt", &"<redacted>")
            .finish()
    }
}

impl ApiKeyChecker {
    /// Creates a checker for the raw salt bytes.
    pub fn new(salt: Vec<u8>) -> ApiKeyChecker {
        ApiKeyChecker { salt }
    }

    /// Creates a checker from the salt as written in the reference config (standard base64,
    /// e.g. `T713/rYYgW7g4m3vG6zGRh7+FM1t0T8j13koXScOAj4=`). `None` if it is not valid base64.
    pub fn from_base64(salt_b64: &str) -> Option<ApiKeyChecker> {
        STANDARD
            .decode(salt_b64.trim())
            .ok()
            .map(ApiKeyChecker::new)
    }

    /// True when `key` is URL-safe base64 (padding optional) of 24 bytes with version 1 and a
    /// valid HMAC-MD5 signature (compared in constant time).
    pub fn check(&self, key: &str) -> bool {
        if key.len() > MAX_ENCODED_LEN {
            return false;
        }
        let Ok(bytes) = URL_SAFE_LENIENT.decode(key) else {
            return false;
        };
        let Ok(bytes) = <[u8; KEY_LEN]>::try_from(bytes.as_slice()) else {
            return false;
        };
        let Some((signed, sig)) = bytes.split_first_chunk::<SIGNED_LEN>() else {
            return false;
        };
        if signed.first() != Some(&VERSION) {
            return false;
        }
        let mut mac = hmac_md5(&self.salt);
        mac.update(signed);
        mac.verify_slice(sig).is_ok()
    }
}

/// Generates an API key for `salt` (keygen): version 1, app id 0, the given sequence number and
/// root flag, URL-safe base64 (32 characters, no padding).
pub fn make_key(salt: &[u8], seq: u16, is_root: bool) -> String {
    let mut key = Vec::with_capacity(KEY_LEN);
    key.push(VERSION);
    key.extend_from_slice(&0u32.to_le_bytes());
    key.extend_from_slice(&seq.to_le_bytes());
    key.push(u8::from(is_root));
    let mut mac = hmac_md5(salt);
    mac.update(&key);
    key.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE.encode(key)
}

fn hmac_md5(salt: &[u8]) -> HmacMd5 {
    // HMAC accepts keys of any length; this cannot fail.
    match <HmacMd5 as Mac>::new_from_slice(salt) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO_SALT: &str = "T713/rYYgW7g4m3vG6zGRh7+FM1t0T8j13koXScOAj4=";
    const DEMO_KEY: &str = "AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K";

    fn demo() -> ApiKeyChecker {
        ApiKeyChecker::from_base64(DEMO_SALT).unwrap()
    }

    #[test]
    fn demo_key_validates() {
        assert!(demo().check(DEMO_KEY));
    }

    #[test]
    fn padding_is_optional() {
        // 24 bytes never need padding, but a padded form must not break anything.
        let c = demo();
        let k = make_key(&STANDARD.decode(DEMO_SALT).unwrap(), 7, false);
        assert!(!k.ends_with('='));
        assert!(c.check(&k));
        // A padded encoding of a valid key length is impossible (24 % 3 == 0); stray padding
        // on a valid key must be rejected rather than crash.
        assert!(!c.check(&format!("{DEMO_KEY}=")));
    }

    #[test]
    fn one_character_change_fails() {
        let c = demo();
        let chars: Vec<char> = DEMO_KEY.chars().collect();
        for i in 0..chars.len() {
            let mut bad = chars.clone();
            bad[i] = if bad[i] == 'A' { 'B' } else { 'A' };
            let bad: String = bad.into_iter().collect();
            assert!(!c.check(&bad), "position {i}: {bad}");
        }
    }

    #[test]
    fn garbage_fails() {
        let c = demo();
        for junk in [
            "",
            "A",
            "not a key",
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
            "AQEAAAABAAD/rAp4DJh05a1HAwFT3A6K", // standard alphabet
            "AQEAAAABAAD_rAp4DJh05a1HAwFT3A6",  // truncated
            "AQEAAAABAAD_rAp4DJh05a1HAwFT3A6KAAAA",
            "ÄQEAAAABAAD_rAp4DJh05a1HAwFT3A6K",
            &"A".repeat(10_000),
        ] {
            assert!(!c.check(junk), "{junk}");
        }
    }

    #[test]
    fn wrong_salt_fails() {
        assert!(!ApiKeyChecker::new(b"other salt".to_vec()).check(DEMO_KEY));
    }

    #[test]
    fn wrong_version_fails_even_when_signed() {
        let salt = b"salt".to_vec();
        let mut raw = vec![2u8, 0, 0, 0, 0, 1, 0, 0];
        let mut mac = hmac_md5(&salt);
        mac.update(&raw);
        raw.extend_from_slice(&mac.finalize().into_bytes());
        assert!(!ApiKeyChecker::new(salt).check(&URL_SAFE.encode(raw)));
    }

    #[test]
    fn generated_keys_validate() {
        let salt = b"some salt bytes".to_vec();
        let c = ApiKeyChecker::new(salt.clone());
        for (seq, root) in [(0, false), (1, true), (u16::MAX, false)] {
            let k = make_key(&salt, seq, root);
            assert_eq!(k.len(), 32);
            assert!(c.check(&k), "{k}");
        }
    }
}
