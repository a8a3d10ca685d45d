//! The `basic` scheme: parsing `login:password` secrets, the login/password policy, the unique
//! key stored for a login, and the bcrypt hash and verify primitives.
//!
//! The bcrypt functions here are slow by design and block the calling thread; executor threads
//! must go through [`super::hasher::HashPool`]. Storing auth records and looking logins up is
//! the store's job, not this module's.

use super::AuthError;

/// bcrypt ignores everything after 72 bytes. Longer passwords are refused instead of silently
/// truncated (the reference server's Go bcrypt refuses them too).
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Splits a `basic` secret at its first colon into (login lowercased, password).
///
/// Not UTF-8, or no colon → [`AuthError::Malformed`]. Either part may be empty (`:newpass`
/// means "keep the login" when changing a password); policy checks are separate.
pub fn parse_secret(secret: &[u8]) -> Result<(String, String), AuthError> {
    let secret = std::str::from_utf8(secret).map_err(|_| AuthError::Malformed)?;
    let (login, password) = secret.split_once(':').ok_or(AuthError::Malformed)?;
    Ok((login.to_lowercase(), password.to_owned()))
}

/// Length and character rules for logins and passwords. Lengths count Unicode scalar values
/// ("runes"), not bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicPolicy {
    /// Shortest acceptable login (the login pattern needs at least 2 characters anyway).
    pub min_login_len: usize,
    /// Longest acceptable login.
    pub max_login_len: usize,
    /// Shortest acceptable password.
    pub min_password_len: usize,
}

impl Default for BasicPolicy {
    /// The reference server's defaults: logins of 2..=32 runes, passwords of at least 3.
    fn default() -> Self {
        BasicPolicy {
            min_login_len: 2,
            max_login_len: 32,
            min_password_len: 3,
        }
    }
}

impl BasicPolicy {
    /// Checks a (lowercased) login: length within bounds, a letter or digit at both ends, and
    /// only letters, digits, `_` and `.` in between (Unicode letters and digits accepted).
    pub fn check_login(&self, login: &str) -> Result<(), AuthError> {
        let len = login.chars().count();
        if len < self.min_login_len {
            return Err(AuthError::Policy(format!(
                "login must be at least {} characters",
                self.min_login_len
            )));
        }
        if len > self.max_login_len {
            return Err(AuthError::Policy(format!(
                "login must be at most {} characters",
                self.max_login_len
            )));
        }
        if !login_pattern_matches(login) {
            return Err(AuthError::Policy(
                "login must start and end with a letter or digit and contain only letters, digits, '_' and '.'"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks a password: at least `min_password_len` runes and at most
    /// [`MAX_PASSWORD_BYTES`] bytes (the bcrypt limit).
    pub fn check_password(&self, password: &str) -> Result<(), AuthError> {
        if password.chars().count() < self.min_password_len {
            return Err(AuthError::Policy(format!(
                "password must be at least {} characters",
                self.min_password_len
            )));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::Policy(format!(
                "password must be at most {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// The reference server's `^[\pL\pN][_.\pL\pN]*[\pL\pN]+$`: two or more characters, letters or
/// digits at both ends, `_`/`.` allowed inside. `char::is_alphanumeric` stands in for
/// `\pL\pN` (it also admits a few combining marks flagged Other_Alphabetic).
fn login_pattern_matches(login: &str) -> bool {
    let mut chars = login.chars();
    let (Some(first), Some(last)) = (chars.next(), chars.next_back()) else {
        return false;
    };
    first.is_alphanumeric()
        && last.is_alphanumeric()
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '.')
}

/// The unique key of a basic auth record (and the `basic:` tag): `"basic:" + login`.
pub fn unique_key(login: &str) -> String {
    format!("basic:{login}")
}

/// Hashes a password with bcrypt at `cost` (4..=31; tests use 4, production 10 or more).
/// Slow: call it from the hash pool, never from an executor thread.
///
/// Passwords over [`MAX_PASSWORD_BYTES`] bytes and out-of-range costs give
/// [`AuthError::Policy`].
pub fn hash_password(password: &str, cost: u32) -> Result<Vec<u8>, AuthError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Policy(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    bcrypt::hash(password, cost)
        .map(String::into_bytes)
        .map_err(|e| AuthError::Policy(format!("cannot hash password: {e}")))
}

/// A well-formed bcrypt hash at `cost` that no password matches (salt and digest all zero
/// bits, `.` in bcrypt's base64). Checking a password against it costs what checking against a
/// real hash of that cost does, so a login for an unknown name is checked against it and takes
/// as long as one with a wrong password: login names cannot be discovered by timing.
pub fn dummy_hash(cost: u32) -> Vec<u8> {
    format!("$2b${cost:02}${}", ".".repeat(53)).into_bytes()
}

/// True when `password` matches the stored bcrypt `hash`. A malformed hash, or a password over
/// [`MAX_PASSWORD_BYTES`] bytes (which can never have been hashed), gives `false`. Slow: call it
/// from the hash pool.
pub fn verify_password(password: &str, hash: &[u8]) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(hash) = std::str::from_utf8(hash) else {
        return false;
    };
    bcrypt::verify(password, hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_checked_in_full_and_matches_nothing() {
        let dummy = dummy_hash(4);
        let text = std::str::from_utf8(&dummy).unwrap();
        // bcrypt parses it and runs the comparison (an unparsable hash would be an error at
        // once, without the work).
        assert_eq!(bcrypt::verify("", text).ok(), Some(false));
        assert_eq!(bcrypt::verify("password", text).ok(), Some(false));
        assert!(!verify_password("secret", &dummy));
        assert!(dummy_hash(10).starts_with(b"$2b$10$") && dummy_hash(10).len() == 60);
    }

    #[test]
    fn secret_splits_at_first_colon_and_lowercases_login() {
        assert_eq!(
            parse_secret(b"Alice:pa:ss").unwrap(),
            ("alice".to_owned(), "pa:ss".to_owned())
        );
        assert_eq!(
            parse_secret(b":newpass").unwrap(),
            (String::new(), "newpass".to_owned())
        );
        assert_eq!(
            parse_secret(b"bob:").unwrap(),
            ("bob".to_owned(), String::new())
        );
        assert_eq!(
            parse_secret("ÉLODIE:x".as_bytes()).unwrap().0,
            "élodie".to_owned()
        );
    }

    #[test]
    fn secret_without_colon_or_utf8_is_malformed() {
        assert_eq!(parse_secret(b"alice"), Err(AuthError::Malformed));
        assert_eq!(parse_secret(b""), Err(AuthError::Malformed));
        assert_eq!(parse_secret(b"al\xffice:pw"), Err(AuthError::Malformed));
    }

    #[test]
    fn login_policy() {
        let p = BasicPolicy::default();
        for ok in [
            "al",
            "alice",
            "a.b",
            "a_b",
            "user_1.x",
            "jörg",
            "ユーザー",
            "42",
            &"a".repeat(32),
        ] {
            assert_eq!(p.check_login(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "_ab",
            "ab_",
            ".ab",
            "ab.",
            "a-b",
            "a b",
            "a:b",
            "a@b",
            &"a".repeat(33),
        ] {
            assert!(
                matches!(p.check_login(bad), Err(AuthError::Policy(_))),
                "{bad}"
            );
        }
        // A smaller minimum still needs two characters (the pattern), as upstream.
        let one = BasicPolicy {
            min_login_len: 1,
            ..BasicPolicy::default()
        };
        assert!(one.check_login("a").is_err());
        let four = BasicPolicy {
            min_login_len: 4,
            ..BasicPolicy::default()
        };
        assert!(four.check_login("abc").is_err());
        assert!(four.check_login("abcd").is_ok());
    }

    #[test]
    fn password_policy_counts_runes() {
        let p = BasicPolicy::default();
        assert!(p.check_password("abc").is_ok());
        assert!(p.check_password("äöü").is_ok());
        assert!(matches!(p.check_password("ab"), Err(AuthError::Policy(_))));
        assert!(matches!(p.check_password(""), Err(AuthError::Policy(_))));
        assert!(p.check_password(&"x".repeat(72)).is_ok());
        assert!(matches!(
            p.check_password(&"x".repeat(73)),
            Err(AuthError::Policy(_))
        ));
    }

    #[test]
    fn unique_key_is_prefixed() {
        assert_eq!(unique_key("alice"), "basic:alice");
    }

    #[test]
    fn bcrypt_round_trip() {
        let h = hash_password("alice123", 4).unwrap();
        assert!(h.starts_with(b"$2"));
        assert!(verify_password("alice123", &h));
        assert!(!verify_password("alice124", &h));
        assert!(!verify_password("", &h));
        // A 72-byte password works and is not confused with a longer one.
        let long = "y".repeat(72);
        let h = hash_password(&long, 4).unwrap();
        assert!(verify_password(&long, &h));
        assert!(!verify_password(&format!("{long}z"), &h));
    }

    #[test]
    fn bcrypt_rejects_bad_input_without_panicking() {
        assert!(matches!(
            hash_password(&"x".repeat(73), 4),
            Err(AuthError::Policy(_))
        ));
        assert!(matches!(hash_password("pw", 3), Err(AuthError::Policy(_))));
        assert!(matches!(hash_password("pw", 32), Err(AuthError::Policy(_))));
        assert!(!verify_password("pw", b""));
        assert!(!verify_password("pw", b"not a hash"));
        assert!(!verify_password("pw", b"$2b$04$short"));
        assert!(!verify_password("pw", b"\xff\xfe"));
    }

    #[test]
    fn verifies_go_style_2a_hashes() {
        // Hash of "password" from an external $2a$ implementation (the reference server's Go
        // bcrypt also writes $2a$); vector taken from the bcrypt crate's own tests.
        let h = b"$2a$04$UuTkLRZZ6QofpDOlMz32MuuxEHA43WOemOYHPz6.SjsVsyO1tDU96";
        assert!(verify_password("password", h));
        assert!(!verify_password("Password", h));
    }
}
