//! Backup codes: 10 characters from Crockford's base32 alphabet (50 bits), shown as
//! `xxxxx-xxxxx`. Input is case- and dash-insensitive, and the letters people confuse with
//! digits (`o`, `i`, `l`) read as the digits, as Crockford's decoding rules say.

/// Crockford's alphabet: no `i`, `l`, `o`, `u`.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
pub const LEN: usize = 10;
pub const COUNT: usize = 10;

/// A new code in display form, `xxxxx-xxxxx`.
pub fn generate() -> String {
    let bytes: [u8; LEN] = rand::random();
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[(b & 0x1f) as usize] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// The canonical form used for hashing, or `None` if `input` cannot be a backup code.
pub fn normalize(input: &str) -> Option<String> {
    let mut out = String::with_capacity(LEN);
    for c in input.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
        if out.len() > LEN {
            return None;
        }
    }
    (out.len() == LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_the_display_shape_and_normalize() {
        for _ in 0..100 {
            let code = generate();
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert_eq!(normalize(&code).unwrap(), code.replace('-', ""));
        }
    }

    #[test]
    fn normalization_ignores_case_dashes_and_confusable_letters() {
        assert_eq!(normalize("ABCDE-FGH0O").as_deref(), Some("abcdefgh00"));
        assert_eq!(normalize("abcdefghIL").as_deref(), Some("abcdefgh11"));
        assert_eq!(normalize("abcde"), None);
        assert_eq!(normalize("abcde-fghjkm"), None);
        assert_eq!(normalize("abcde-fghj!"), None);
        assert_eq!(normalize("abcde-fghjé"), None);
        assert_eq!(normalize("abcdu-fghjk"), None, "u is not in the alphabet");
    }
}
