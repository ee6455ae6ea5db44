//! People's names as fdb stores and looks them up: trimmed, in Unicode NFC, and printable.
//!
//! A name is printed back to terminals and compared byte for byte, so "George_W_Bush " (a
//! trailing space) or "Jos\u{e9}" typed as 'e' + a combining accent would otherwise be a second
//! person who looks the same in `fdb list`, and an ANSI escape in a name would rewrite the screen
//! of whoever lists the database.

use unicode_normalization::UnicodeNormalization;

use crate::error::{FdbError, Result};

/// Characters that reorder how text is shown (bidirectional overrides and isolates): a name
/// holding one prints differently from its bytes.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The stored form of a name: NFC, trimmed; control characters are refused.
pub fn normalise(name: &str) -> Result<String> {
    let nfc: String = name.nfc().collect();
    let trimmed = nfc.trim();
    if trimmed.is_empty() {
        return Err(FdbError::Invalid("a person's name cannot be empty".into()));
    }
    if let Some(c) = trimmed.chars().find(|&c| c.is_control() || is_bidi_control(c)) {
        return Err(FdbError::Invalid(format!(
            "the name {:?} holds the control character U+{:04X}; names are printable text",
            trimmed.escape_debug().to_string(),
            c as u32
        )));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_are_trimmed_and_composed_forms_become_one() {
        assert_eq!(normalise("  George_W_Bush \t").unwrap(), "George_W_Bush");
        // 'e' + U+0301 COMBINING ACUTE ACCENT is NFC U+00E9.
        assert_eq!(normalise("Jose\u{301}").unwrap(), "Jos\u{e9}");
        assert_eq!(normalise("Jos\u{e9}").unwrap(), "Jos\u{e9}");
    }

    #[test]
    fn control_characters_and_empty_names_are_refused() {
        for bad in ["\u{1b}[31mred", "two\nlines", "tab\tinside", "bell\u{7}", "evil\u{202e}txt.jpg", "del\u{7f}"] {
            let err = normalise(bad).unwrap_err().to_string();
            assert!(err.contains("control character U+"), "{bad:?}: {err}");
        }
        assert!(normalise(" \u{3000} ").is_err());
    }
}
