//! What a user types as a second factor: a 6- or 8-digit TOTP code or a backup code.

use super::backup_code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactorCode {
    Totp(String),
    /// Normalized (see [`backup_code::normalize`]).
    Backup(String),
}

impl SecondFactorCode {
    /// Parses user input; spaces inside a TOTP code ("123 456") are tolerated.
    pub fn parse(input: &str) -> Option<Self> {
        let trimmed = input.trim();
        if trimmed.len() > 32 {
            return None;
        }
        let digits: String = trimmed.chars().filter(|c| *c != ' ').collect();
        if matches!(digits.len(), 6 | 8) && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Some(SecondFactorCode::Totp(digits));
        }
        backup_code::normalize(trimmed).map(SecondFactorCode::Backup)
    }

    pub fn method(&self) -> &'static str {
        match self {
            SecondFactorCode::Totp(_) => "totp",
            SecondFactorCode::Backup(_) => "backup_code",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_totp_and_backup_codes_and_refuses_the_rest() {
        assert_eq!(
            SecondFactorCode::parse("123456"),
            Some(SecondFactorCode::Totp("123456".into()))
        );
        assert_eq!(
            SecondFactorCode::parse(" 123 456 "),
            Some(SecondFactorCode::Totp("123456".into()))
        );
        assert_eq!(
            SecondFactorCode::parse("1234 5678"),
            Some(SecondFactorCode::Totp("12345678".into()))
        );
        assert!(matches!(
            SecondFactorCode::parse("abcde-fghjk"),
            Some(SecondFactorCode::Backup(_))
        ));
        for bad in [
            "",
            "12345",
            "1234567",
            "123456789",
            "abcdef",
            "１２３４５６",
            "12345a",
            &"1".repeat(10_000),
        ] {
            assert_eq!(SecondFactorCode::parse(bad), None, "{bad:?}");
        }
    }
}
