//! What a client said about itself in its first `{hi}`: user agent, language and platform,
//! kept as one allocation (a session holds them for its whole life, and most never change).

/// The user agent, language and platform of a session, in one string with two offsets. Empty
/// until `{hi}`; an empty record holds no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `ua`, then `lang`, then `platform`, back to back.
    text: Box<str>,
    /// End of the user agent in `text`.
    ua_end: u32,
    /// End of the language in `text` (the platform runs from here to the end).
    lang_end: u32,
}

impl ClientInfo {
    /// A record of the three values.
    pub fn new(ua: &str, lang: &str, platform: &str) -> ClientInfo {
        let mut text = String::with_capacity(ua.len() + lang.len() + platform.len());
        text.push_str(ua);
        text.push_str(lang);
        text.push_str(platform);
        // A client message is far below 4 GiB (the transports bound its size), so the offsets
        // fit; saturating keeps the slicing in bounds even if that ever changed.
        let ua_end = u32::try_from(ua.len()).unwrap_or(u32::MAX);
        let lang_end = u32::try_from(ua.len() + lang.len()).unwrap_or(u32::MAX);
        ClientInfo {
            text: text.into_boxed_str(),
            ua_end,
            lang_end,
        }
    }

    /// The user agent (`ua` of `{hi}`).
    pub fn ua(&self) -> &str {
        self.text.get(..self.ua_end as usize).unwrap_or("")
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
        ClientInfo::new(self.ua(), lang, self.platform())
    }
}

#[cfg(test)]
mod tests {
    use super::ClientInfo;

    #[test]
    fn the_three_values_come_back_as_given() {
        let c = ClientInfo::new("TinodeWeb/0.25 (Firefox)", "en-GB", "web");
        assert_eq!(
            (c.ua(), c.lang(), c.platform()),
            ("TinodeWeb/0.25 (Firefox)", "en-GB", "web")
        );
        let c = c.with_lang("fr");
        assert_eq!(
            (c.ua(), c.lang(), c.platform()),
            ("TinodeWeb/0.25 (Firefox)", "fr", "web")
        );
        let c = ClientInfo::new("", "", "ios");
        assert_eq!((c.ua(), c.lang(), c.platform()), ("", "", "ios"));
        let c = ClientInfo::new("ü-agent", "", "");
        assert_eq!((c.ua(), c.lang(), c.platform()), ("ü-agent", "", ""));
    }

    #[test]
    fn an_empty_record_is_empty_and_small() {
        let c = ClientInfo::default();
        assert_eq!((c.ua(), c.lang(), c.platform()), ("", "", ""));
        assert_eq!(std::mem::size_of::<ClientInfo>(), 24);
    }
}
