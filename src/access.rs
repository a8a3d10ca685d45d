//! Access modes (`JRWPASDO` bit sets), authentication levels and per-level default access.
//!
//! A leaf shared by store, auth and the protocol core. Parsing follows the reference server:
//! letters in any case and order, `N` alone for "nothing", empty for "unset".

use std::fmt;

/// A set of access bits. `want & given` is the effective mode of a subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessMode(pub u8);

impl AccessMode {
    pub const JOIN: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const WRITE: u8 = 0x04;
    pub const PRES: u8 = 0x08;
    pub const APPROVE: u8 = 0x10;
    pub const SHARE: u8 = 0x20;
    pub const DELETE: u8 = 0x40;
    pub const OWNER: u8 = 0x80;

    pub const NONE: AccessMode = AccessMode(0);
    /// Owner of a group: everything.
    pub const OWNER_FULL: AccessMode = AccessMode(0xff);
    /// Default for authenticated users joining a new group: `JRWPS`.
    pub const PUBLIC: AccessMode = AccessMode(0x01 | 0x02 | 0x04 | 0x08 | 0x20);
    /// P2P mode `JRWPA`.
    pub const P2P: AccessMode = AccessMode(0x01 | 0x02 | 0x04 | 0x08 | 0x10);
    /// A new user's default for authenticated peers: `JRWPAS`.
    pub const USER_AUTH_DEFAULT: AccessMode = AccessMode(0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20);
    /// A `me`/`fnd` subscription: `JPS`.
    pub const SELF_ME: AccessMode = AccessMode(0x01 | 0x08 | 0x20);
    /// A channel reader's fixed access: `JRP`.
    pub const CHAN_READER: AccessMode = AccessMode(0x01 | 0x02 | 0x08);
    /// What root gets on `sys`: `JRWPD`.
    pub const SYS_ROOT: AccessMode = AccessMode(0x01 | 0x02 | 0x04 | 0x08 | 0x40);

    const LETTERS: [(u8, char); 8] = [
        (Self::JOIN, 'J'),
        (Self::READ, 'R'),
        (Self::WRITE, 'W'),
        (Self::PRES, 'P'),
        (Self::APPROVE, 'A'),
        (Self::SHARE, 'S'),
        (Self::DELETE, 'D'),
        (Self::OWNER, 'O'),
    ];

    /// Parses a mode string. `Ok(None)` is the empty string ("unset"); `Err` is anything invalid.
    pub fn parse(s: &str) -> Result<Option<AccessMode>, InvalidMode> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.eq_ignore_ascii_case("n") {
            return Ok(Some(AccessMode::NONE));
        }
        let mut bits = 0u8;
        for c in s.chars() {
            let up = c.to_ascii_uppercase();
            match Self::LETTERS.iter().find(|(_, l)| *l == up) {
                Some((b, _)) => bits |= b,
                None => return Err(InvalidMode),
            }
        }
        Ok(Some(AccessMode(bits)))
    }

    /// True when every bit of `need` is set.
    pub fn has(self, need: u8) -> bool {
        self.0 & need == need
    }

    /// Bitwise and.
    pub fn and(self, other: AccessMode) -> AccessMode {
        AccessMode(self.0 & other.0)
    }

    /// Bitwise or with raw bits.
    pub fn with(self, bits: u8) -> AccessMode {
        AccessMode(self.0 | bits)
    }

    /// Clears raw bits.
    pub fn without(self, bits: u8) -> AccessMode {
        AccessMode(self.0 & !bits)
    }

    /// The change from `old` to `self` as the reference writes it in `{pres dacs}`:
    /// `"+ADDED-REMOVED"` (either part omitted when empty), the full mode when `old` had no
    /// bits, and `None` when nothing changed.
    pub fn delta_from(self, old: AccessMode) -> Option<String> {
        if self == old {
            return None;
        }
        if old.0 == 0 {
            return Some(self.to_string());
        }
        let letters = |bits: u8| -> String {
            Self::LETTERS
                .iter()
                .filter(|(b, _)| bits & b != 0)
                .map(|(_, l)| *l)
                .collect()
        };
        let (added, removed) = (self.0 & !old.0, old.0 & !self.0);
        let mut out = String::new();
        if added != 0 {
            out.push('+');
            out.push_str(&letters(added));
        }
        if removed != 0 {
            out.push('-');
            out.push_str(&letters(removed));
        }
        Some(out)
    }
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("N");
        }
        for (b, l) in Self::LETTERS {
            if self.0 & b != 0 {
                write!(f, "{l}")?;
            }
        }
        Ok(())
    }
}

/// A mode string that is neither empty, `N`, nor made of `JRWPASDO` letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid access mode")]
pub struct InvalidMode;

/// Default access of a user or topic for authenticated and anonymous users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DefaultAccess {
    pub auth: AccessMode,
    pub anon: AccessMode,
}

impl DefaultAccess {
    /// Parses a client's `defacs` strings over `self`: each string given replaces its level's
    /// mode (an empty one keeps it). `None` when either string is not a mode. The one parser
    /// of default access; callers apply their own rules on top (topics refuse `O`, sign-up
    /// masks to the P2P maximum).
    pub fn parse_over(self, auth: Option<&str>, anon: Option<&str>) -> Option<DefaultAccess> {
        let mut out = self;
        for (text, slot) in [(auth, &mut out.auth), (anon, &mut out.anon)] {
            if let Some(text) = text {
                if let Some(m) = AccessMode::parse(text).ok()? {
                    *slot = m;
                }
            }
        }
        Some(out)
    }
}

/// Authentication level of a session or account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthLevel {
    #[default]
    None,
    Anon,
    Auth,
    Root,
}

impl AuthLevel {
    /// The wire name (`""`, `"anon"`, `"auth"`, `"root"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthLevel::None => "",
            AuthLevel::Anon => "anon",
            AuthLevel::Auth => "auth",
            AuthLevel::Root => "root",
        }
    }

    /// Parses a level name in any case.
    pub fn parse(s: &str) -> Option<AuthLevel> {
        match s.to_ascii_lowercase().as_str() {
            "" | "none" => Some(AuthLevel::None),
            "anon" => Some(AuthLevel::Anon),
            "auth" => Some(AuthLevel::Auth),
            "root" => Some(AuthLevel::Root),
            _ => None,
        }
    }

    /// The numeric value used in tokens (0, 10, 20, 30).
    pub fn to_u16(self) -> u16 {
        match self {
            AuthLevel::None => 0,
            AuthLevel::Anon => 10,
            AuthLevel::Auth => 20,
            AuthLevel::Root => 30,
        }
    }

    /// Inverse of [`AuthLevel::to_u16`].
    pub fn from_u16(v: u16) -> Option<AuthLevel> {
        match v {
            0 => Some(AuthLevel::None),
            10 => Some(AuthLevel::Anon),
            20 => Some(AuthLevel::Auth),
            30 => Some(AuthLevel::Root),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_read_like_the_reference() {
        let m = |s: &str| AccessMode::parse(s).unwrap().unwrap();
        assert_eq!(m("JRWP").delta_from(m("JRP")), Some("+W".into()));
        assert_eq!(m("JRP").delta_from(m("JRWPA")), Some("-WA".into()));
        assert_eq!(m("JRS").delta_from(m("JRWP")), Some("+S-WP".into()));
        assert_eq!(m("JRW").delta_from(AccessMode::NONE), Some("JRW".into()));
        assert_eq!(m("JRW").delta_from(m("JRW")), None);
    }

    #[test]
    fn modes_parse_and_render_in_canonical_order() {
        assert_eq!(
            AccessMode::parse("srwj").unwrap().unwrap().to_string(),
            "JRWS"
        );
        assert_eq!(AccessMode::parse("N").unwrap(), Some(AccessMode::NONE));
        assert_eq!(AccessMode::parse("").unwrap(), None);
        assert!(AccessMode::parse("JX").is_err());
        assert!(AccessMode::parse("NJ").is_err());
        assert_eq!(AccessMode::OWNER_FULL.to_string(), "JRWPASDO");
        assert_eq!(AccessMode::PUBLIC.to_string(), "JRWPS");
    }
}
