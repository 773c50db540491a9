//! Input rules for account fields. Each returns the normalized value or a message for the
//! field's entry in a problem document's `errors`.

pub const PASSWORD_MIN_BYTES: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 1024;
pub const EMAIL_MAX: usize = 254;
pub const USER_NAME_MIN: usize = 3;
pub const USER_NAME_MAX: usize = 254;
pub const PHONE_MAX: usize = 32;

/// Trims and lowercases an email address; refuses anything that cannot be one.
pub fn email(input: &str) -> Result<String, &'static str> {
    let value = input.trim().to_lowercase();
    if value.is_empty() {
        return Err("is required");
    }
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
    if plausible {
        Ok(value)
    } else {
        Err("must be an email address")
    }
}

/// A chosen user name: 3 to 254 of letters, digits and `. _ - +`.
///
/// Users are found by id, email or user name (at login, and by the admin CLI), so a user
/// name must never be mistaken for the other two: one with `@` could be someone else's
/// email (and would block that person's registration, as an account without a chosen user
/// name is known by its email), and one that parses as a UUID could be someone's id.
pub fn user_name(input: &str) -> Result<String, &'static str> {
    let value = input.trim();
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

/// The key user names are unique by: case does not make a different user.
pub fn user_name_key(user_name: &str) -> String {
    user_name.to_lowercase()
}

/// A new password: 8 to 1024 bytes, anything else allowed (NIST SP 800-63B).
pub fn new_password(input: &str) -> Result<(), &'static str> {
    if input.len() < PASSWORD_MIN_BYTES {
        Err("must be at least 8 bytes")
    } else if input.len() > PASSWORD_MAX_BYTES {
        Err("must be at most 1024 bytes")
    } else {
        Ok(())
    }
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
    fn password_length_is_bounded_in_bytes() {
        assert!(new_password("1234567").is_err());
        assert!(new_password("12345678").is_ok());
        assert!(new_password(&"x".repeat(1024)).is_ok());
        assert!(new_password(&"x".repeat(1025)).is_err());
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
        assert!(phone_number("+1 (555) 010-9999").is_ok());
        assert!(phone_number("call me").is_err());
    }
}
