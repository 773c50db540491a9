//! Input rules for account fields. Each returns the normalized value or a message for the
//! field's entry in a problem document's `errors`.

use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, MixedScript};

/// Fewest characters in a new password, counted after NFKC (NIST SP 800-63B).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Most bytes of a password as sent: bounds the hashing work an attacker can ask for.
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const EMAIL_MAX: usize = 254;
pub const USER_NAME_MIN: usize = 3;
pub const USER_NAME_MAX: usize = 254;
pub const PHONE_MAX: usize = 32;

/// Trims and normalizes an email address; refuses anything that cannot be one, and
/// anything that could pass for a different address.
///
/// Two addresses that look the same must be the same account. So the address is put in
/// NFKC and lowercased (full-width and other compatibility forms become their plain
/// letters); invisible characters and bidirectional controls, which change what is shown
/// without changing what is seen, are refused; the local part and each label of the domain
/// must be written in one script (no Cyrillic `а` among Latin letters) and, when not plain
/// ASCII, must not be a look-alike of an ASCII string (UTS #39 confusable skeleton); the
/// domain is stored in its ASCII (IDNA) form, so `bücher.de` and `xn--bcher-kva.de` are one.
pub fn email(input: &str) -> Result<String, &'static str> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("is required");
    }
    hidden_characters(trimmed)?;
    let value = normalize(trimmed);
    hidden_characters(&value)?;
    if value.len() > EMAIL_MAX {
        return Err("must be at most 254 characters");
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err("must be an email address");
    };
    let plausible = !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        return Err("must be an email address");
    }
    look_alike(local)?;
    let ascii_domain =
        idna::domain_to_ascii_strict(domain).map_err(|_| "must be an email address")?;
    // Check the domain as it is shown: a label sent as punycode is checked as well.
    let (shown_domain, _) = idna::domain_to_unicode(&ascii_domain);
    for label in shown_domain.split('.') {
        look_alike(label)?;
    }
    let normalized = format!("{local}@{ascii_domain}");
    if normalized.len() > EMAIL_MAX {
        return Err("must be at most 254 characters");
    }
    Ok(normalized)
}

/// The form an email is looked up by (login, the admin CLI): as stored by [`email`], or for
/// input [`email`] refuses (which matches no account) simply normalized.
pub fn email_key(input: &str) -> String {
    email(input).unwrap_or_else(|_| normalize(input.trim()))
}

/// NFKC, lowercased, NFKC again (lowercasing can leave a string that is not in NFKC).
fn normalize(input: &str) -> String {
    let folded: String = input.nfkc().collect::<String>().to_lowercase();
    folded.nfkc().collect()
}

/// Bidirectional formatting characters: they reorder what is displayed (`U+202E` shows
/// `moc.evil@ann` as `ann@live.com`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that are drawn as nothing: the rest of Unicode's Default_Ignorable_Code_Point
/// set (zero-width space and joiners, soft hyphen, word joiner, variation selectors, byte
/// order mark, Hangul fillers, tags). A short fixed list from the standard, kept here
/// because `unicode-security` does not expose its copy.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2065}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

fn hidden_characters(value: &str) -> Result<(), &'static str> {
    if value.chars().any(is_bidi_control) {
        return Err("must not contain bidirectional control characters");
    }
    if value.chars().any(is_invisible) {
        return Err("must not contain invisible characters");
    }
    Ok(())
}

/// Refuses a non-ASCII part of an address that could be mistaken for another: one that
/// mixes scripts, uses characters UTS #39 does not allow in identifiers (symbols, rare or
/// obsolete scripts), or whose confusable skeleton is plain ASCII (it looks exactly like an
/// ASCII string written in another script, such as Cyrillic `раураl`).
fn look_alike(part: &str) -> Result<(), &'static str> {
    if part.is_ascii() {
        return Ok(());
    }
    if !part.is_single_script() {
        return Err("must not mix scripts (such as Latin and Cyrillic letters) in one part");
    }
    if part
        .chars()
        .any(|c| !c.is_ascii() && !GeneralSecurityProfile::identifier_allowed(c))
    {
        return Err("may contain only letters, digits and the usual punctuation");
    }
    if unicode_security::skeleton(part).all(|c| c.is_ascii()) {
        return Err("must not imitate Latin letters with look-alikes from another script");
    }
    Ok(())
}

/// A chosen user name: 3 to 254 of letters, digits and `. _ - +`.
///
/// Users are found by id, email or user name (at login, and by the admin CLI), so a user
/// name must never be mistaken for the other two: one with `@` could be someone else's
/// email (and would block that person's registration, as an account without a chosen user
/// name is known by its email), and one that parses as a UUID could be someone's id.
pub fn user_name(input: &str) -> Result<String, &'static str> {
    let trimmed = input.trim();
    hidden_characters(trimmed)?;
    // Full-width and other compatibility forms become the plain letters they stand for.
    let normalized: String = trimmed.nfkc().collect();
    let value = normalized.as_str();
    if value.len() < USER_NAME_MIN || value.len() > USER_NAME_MAX {
        return Err("must be 3 to 254 characters");
    }
    if value.contains('@') {
        return Err("must not contain @: an email address cannot be a user name");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
    {
        return Err("may contain only letters, digits and . _ - +");
    }
    if uuid::Uuid::try_parse(value).is_ok() {
        return Err("must not be a UUID: it would look like an account id");
    }
    Ok(value.to_owned())
}

/// The key user names are unique by: case and compatibility forms do not make a
/// different user.
pub fn user_name_key(user_name: &str) -> String {
    normalize(user_name)
}

/// A password in the form it is hashed and compared in: NFKC, so the same characters typed
/// on different systems (composed or decomposed accents, full-width forms) are the same
/// password (NIST SP 800-63B).
pub fn password_nfkc(input: &str) -> String {
    input.nfkc().collect()
}

/// Commonly used and breached passwords, lowercased: the list `common_passwords.LICENSE`
/// describes, shipped in the binary so no check leaves the server.
static COMMON_PASSWORDS: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

/// The words a new password must not be built on: the account's email, its local part,
/// its user name, the service's name and "tessera". Words under 3 characters are left out.
pub fn password_context(email: &str, user_name: Option<&str>, issuer: &str) -> Vec<String> {
    let mut words = vec![email.to_owned()];
    if let Some((local, _)) = email.split_once('@') {
        words.push(local.to_owned());
    }
    words.extend(user_name.map(str::to_owned));
    words.push(issuer.to_owned());
    words.push("tessera".to_owned());
    let mut words: Vec<String> = words
        .iter()
        .map(|w| normalize(w.trim()))
        .filter(|w| w.chars().count() >= 3)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// A new password, per NIST SP 800-63B: at least 8 characters after NFKC (the byte cap on
/// input is the caller's), anything else allowed, but not a commonly used or breached
/// password and not built on the words of `context` (see [`password_context`]): with
/// those removed, 8 characters must remain.
pub fn new_password(input: &str, context: &[String]) -> Result<(), &'static str> {
    if input.len() > PASSWORD_MAX_BYTES {
        return Err("must be at most 1024 bytes");
    }
    let normalized = password_nfkc(input);
    if normalized.chars().count() < PASSWORD_MIN_CHARS {
        return Err("must be at least 8 characters");
    }
    let folded = normalize(&normalized);
    if COMMON_PASSWORDS.contains(folded.as_str()) {
        return Err("is too common: it is on a list of frequently used and breached passwords");
    }
    for word in context {
        if folded.contains(word.as_str())
            && folded.replace(word.as_str(), "").chars().count() < PASSWORD_MIN_CHARS
        {
            return Err(
                "is too close to your email address, user name or the name of this service",
            );
        }
    }
    Ok(())
}

/// An optional phone number: digits with the usual separators, at most 32 characters.
pub fn phone_number(input: &str) -> Result<String, &'static str> {
    let value = input.trim();
    let digits = value.chars().filter(|c| c.is_ascii_digit()).count();
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')' | '.'));
    if value.len() > PHONE_MAX || !allowed || digits < 5 {
        Err("must be a phone number of 5 to 32 characters")
    } else {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized_and_checked() {
        assert_eq!(email("  Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn look_alike_emails_are_refused_or_folded_into_one() {
        // Compatibility forms become plain letters: the same address.
        assert_eq!(
            email("ａｌｉｃｅ@ｃｏｒｐ.ｃｏｍ").unwrap(),
            "alice@corp.com"
        );
        // The domain is stored in its ASCII form, however it was written.
        assert_eq!(email("Ann@Bücher.DE").unwrap(), "ann@xn--bcher-kva.de");
        assert_eq!(
            email("ann@xn--bcher-kva.de").unwrap(),
            "ann@xn--bcher-kva.de"
        );
        // Real addresses in one non-Latin script are fine.
        assert_eq!(
            email("иван@пример.рф").unwrap(),
            "иван@xn--e1afmkfd.xn--p1ai"
        );
        assert_eq!(email("josé@example.com").unwrap(), "josé@example.com");
        for (bad, why) in [
            ("alice\u{200B}@corp.com", "zero-width space"),
            ("al\u{00AD}ice@corp.com", "soft hyphen"),
            ("alice\u{2060}@corp.com", "word joiner"),
            ("\u{FEFF}alice@corp.com", "byte order mark"),
            ("alice@corp\u{200D}.com", "zero-width joiner in the domain"),
            ("\u{202E}moc.proc@ecila", "right-to-left override"),
            ("alice\u{200E}@corp.com", "left-to-right mark"),
            ("alice\u{2067}@corp.com", "right-to-left isolate"),
            ("\u{0430}lice@corp.com", "Cyrillic a among Latin letters"),
            ("alice@c\u{043E}rp.com", "Cyrillic o in the domain"),
            ("alice@xn--crp-sed.com", "the same, sent as punycode"),
            (
                "\u{0440}\u{0430}\u{0443}\u{0440}\u{0430}l@corp.com",
                "mixed: Cyrillic and a Latin l",
            ),
            (
                "\u{0441}\u{043E}\u{0440}@corp.com",
                "all Cyrillic, looks like Latin cop",
            ),
            ("alice\u{2620}@corp.com", "a symbol"),
        ] {
            assert!(email(bad).is_err(), "{why}: {bad:?}");
        }
        assert_eq!(
            email("alice\u{200B}@corp.com"),
            Err("must not contain invisible characters")
        );
        assert_eq!(
            email("\u{202E}moc.proc@ecila"),
            Err("must not contain bidirectional control characters")
        );
        let mixed = Err("must not mix scripts (such as Latin and Cyrillic letters) in one part");
        assert_eq!(email("\u{0430}lice@corp.com"), mixed);
        assert_eq!(email("alice@xn--crp-sed.com"), mixed, "decoded and checked");
        assert_eq!(
            email("\u{0441}\u{043E}\u{0440}@corp.com"),
            Err("must not imitate Latin letters with look-alikes from another script")
        );
        // Looking an address up normalizes it the same way.
        assert_eq!(email_key(" ＡＬＩＣＥ@Corp.com"), "alice@corp.com");
        assert_eq!(email_key("ann@BÜCHER.de"), "ann@xn--bcher-kva.de");
    }

    #[test]
    fn password_length_is_counted_in_characters_after_nfkc() {
        let none: &[String] = &[];
        assert!(new_password("1234567", none).is_err());
        assert!(new_password("z8q!w7e#", none).is_ok());
        // Five two-byte characters are ten bytes but five characters.
        assert_eq!(
            new_password("ééééé", none),
            Err("must be at least 8 characters")
        );
        assert!(new_password("éééééééé", none).is_ok());
        // A decomposed é is two code points but one character after NFKC.
        assert!(new_password(&"e\u{0301}".repeat(7), none).is_err());
        assert!(new_password(&"x".repeat(1024), none).is_ok());
        assert!(new_password(&"x".repeat(1025), none).is_err());
        assert_eq!(password_nfkc("cafe\u{0301}"), "café");
        assert_eq!(password_nfkc("ｐａｓｓ"), "pass");
    }

    #[test]
    fn common_passwords_and_context_words_are_refused() {
        let none: &[String] = &[];
        assert!(COMMON_PASSWORDS.len() > 17_000, "the list is bundled");
        for common in [
            "password",
            "12345678",
            "Password1",
            "QWERTYUIOP",
            "ｐａｓｓｗｏｒｄ",
            "iloveyou",
        ] {
            assert_eq!(
                new_password(common, none),
                Err("is too common: it is on a list of frequently used and breached passwords"),
                "{common}"
            );
        }
        assert!(new_password("correct horse battery staple", none).is_ok());
        let context = password_context("ann.smith@example.com", Some("annie"), "Acme ID");
        let close =
            Err("is too close to your email address, user name or the name of this service");
        for bad in [
            "ann.smith@example.com",
            "Ann.Smith2024",
            "annie!annie!",
            "tessera-2024",
            "acme id 12345",
        ] {
            assert_eq!(new_password(bad, &context), close, "{bad}");
        }
        assert!(new_password("ann.smith likes long walks", &context).is_ok());
        assert!(new_password("correct horse battery staple", &context).is_ok());
    }

    #[test]
    fn user_names_and_phones() {
        assert!(user_name("ann.smith").is_ok());
        assert!(user_name("an").is_err());
        assert!(user_name("ann smith").is_err());
        assert!(user_name("dave@corp.com").is_err(), "looks like an email");
        assert!(user_name("@dave").is_err());
        let id = uuid::Uuid::new_v4();
        assert!(user_name(&id.to_string()).is_err(), "looks like an id");
        assert!(
            user_name(&id.simple().to_string()).is_err(),
            "an id without dashes"
        );
        assert!(user_name(&id.to_string().to_uppercase()).is_err());
        assert!(user_name("dave+work").is_ok());
        assert_eq!(
            user_name("ａｎｎ").unwrap(),
            "ann",
            "compatibility forms fold"
        );
        assert!(user_name("ann\u{200B}").is_err());
        assert!(user_name("\u{202E}nna").is_err());
        assert!(user_name("\u{0430}nn").is_err(), "Cyrillic a");
        assert_eq!(user_name_key("ＡＮＮ"), "ann");
        assert!(phone_number("+1 (555) 010-9999").is_ok());
        assert!(phone_number("call me").is_err());
    }
}
