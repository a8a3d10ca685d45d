//! Where a client connects from and what it said about itself in its first `{hi}`: remote
//! address, user agent, language and platform, kept as one allocation (a session holds them
//! for its whole life, and most never change).

/// The remote address, user agent, language and platform of a session, in one string with
/// three offsets (32 bytes where four strings would take 64, in every session: W1). The last
/// three are empty until `{hi}`; an empty record holds no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The remote address, `ua`, `lang`, then `platform`, back to back.
    text: Box<str>,
    /// End of the remote address in `text`.
    remote_end: u32,
    /// End of the user agent in `text`.
    ua_end: u32,
    /// End of the language in `text` (the platform runs from here to the end).
    lang_end: u32,
}

impl ClientInfo {
    /// A record of the four values.
    fn build(remote: &str, ua: &str, lang: &str, platform: &str) -> ClientInfo {
        let parts = [remote, ua, lang, platform];
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; 3];
        for (i, p) in parts.iter().enumerate() {
            text.push_str(p);
            // A client message is far below 4 GiB (the transports bound its size), so the
            // offsets fit; saturating keeps the slicing in bounds even if that ever changed.
            if let Some(end) = ends.get_mut(i) {
                *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
            }
        }
        ClientInfo {
            text: text.into_boxed_str(),
            remote_end: ends[0],
            ua_end: ends[1],
            lang_end: ends[2],
        }
    }

    /// A record of the remote address alone (a session before its `{hi}`).
    pub fn of_remote(remote: &str) -> ClientInfo {
        ClientInfo::build(remote, "", "", "")
    }

    /// The same remote address with what `{hi}` said.
    pub fn with_hi(&self, ua: &str, lang: &str, platform: &str) -> ClientInfo {
        ClientInfo::build(self.remote(), ua, lang, platform)
    }

    /// The remote address (for logs, stats and the per-address limits).
    pub fn remote(&self) -> &str {
        self.text.get(..self.remote_end as usize).unwrap_or("")
    }

    /// The user agent (`ua` of `{hi}`).
    pub fn ua(&self) -> &str {
        self.text
            .get(self.remote_end as usize..self.ua_end as usize)
            .unwrap_or("")
    }

    /// The language (`lang` of `{hi}`).
    pub fn lang(&self) -> &str {
        self.text
            .get(self.ua_end as usize..self.lang_end as usize)
            .unwrap_or("")
    }

    /// The platform (`platf` of `{hi}`).
    pub fn platform(&self) -> &str {
        self.text.get(self.lang_end as usize..).unwrap_or("")
    }

    /// The same record with another language (a later `{hi}` may change it).
    pub fn with_lang(&self, lang: &str) -> ClientInfo {
        ClientInfo::build(self.remote(), self.ua(), lang, self.platform())
    }
}

#[cfg(test)]
mod tests {
    use super::ClientInfo;

    #[test]
    fn the_three_values_come_back_as_given() {
        let c = ClientInfo::of_remote("10.0.0.7");
        assert_eq!(
            (c.remote(), c.ua(), c.lang(), c.platform()),
            ("10.0.0.7", "", "", "")
        );
        let c = c.with_hi("TinodeWeb/0.25 (Firefox)", "en-GB", "web");
        assert_eq!(
            (c.remote(), c.ua(), c.lang(), c.platform()),
            ("10.0.0.7", "TinodeWeb/0.25 (Firefox)", "en-GB", "web")
        );
        let c = c.with_lang("fr");
        assert_eq!(
            (c.remote(), c.ua(), c.lang(), c.platform()),
            ("10.0.0.7", "TinodeWeb/0.25 (Firefox)", "fr", "web")
        );
        let c = ClientInfo::of_remote("").with_hi("", "", "ios");
        assert_eq!(
            (c.remote(), c.ua(), c.lang(), c.platform()),
            ("", "", "", "ios")
        );
        let c = ClientInfo::of_remote("[::1]:9").with_hi("ü-agent", "", "");
        assert_eq!(
            (c.remote(), c.ua(), c.lang(), c.platform()),
            ("[::1]:9", "ü-agent", "", "")
        );
    }

    #[test]
    fn an_empty_record_is_empty_and_small() {
        let c = ClientInfo::default();
        assert_eq!(
            (c.remote(), c.ua(), c.lang(), c.platform()),
            ("", "", "", "")
        );
        assert_eq!(std::mem::size_of::<ClientInfo>(), 32);
    }
}
