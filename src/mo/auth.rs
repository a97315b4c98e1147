//! Hologram-sticker authenticity codes: digit strings whose width is part of the code, so the
//! arithmetic keeps it (`"000100"` − 1 = `"000099"`) and never goes through a number that
//! could overflow or drop leading zeros.

/// A valid code: 1 to 40 ASCII digits.
pub(crate) fn is_code(text: &str) -> bool {
    (1..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// `code − 1`, same width; None for an all-zero code.
pub(crate) fn predecessor(code: &str) -> Option<String> {
    let mut digits = code.as_bytes().to_vec();
    for d in digits.iter_mut().rev() {
        if *d == b'0' {
            *d = b'9';
        } else {
            *d -= 1;
            return String::from_utf8(digits).ok();
        }
    }
    None
}

/// Numeric comparison of two codes, whatever their widths.
pub(crate) fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// How many stickers from `first` to `last` inclusive, when it fits a u64.
pub(crate) fn count(first: &str, last: &str) -> Option<u64> {
    let first: u64 = first.parse().ok()?;
    let last: u64 = last.parse().ok()?;
    last.checked_sub(first)?.checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_the_width() {
        assert_eq!(predecessor("000100").as_deref(), Some("000099"));
        assert_eq!(predecessor("1000").as_deref(), Some("0999"));
        assert_eq!(predecessor("1").as_deref(), Some("0"));
        assert_eq!(predecessor("0000"), None);
        assert!(!is_code("12a") && !is_code("") && !is_code("-1") && is_code("007"));
        assert_eq!(count("000100", "000499"), Some(400));
    }

    proptest! {
        #[test]
        fn predecessor_is_minus_one(n in 1u64..u64::MAX, width in 1usize..24) {
            let code = format!("{n:0width$}");
            let before = predecessor(&code).unwrap();
            prop_assert_eq!(before.len(), code.len());
            prop_assert_eq!(before.parse::<u64>().unwrap(), n - 1);
            prop_assert_eq!(compare(&before, &code), std::cmp::Ordering::Less);
        }

        #[test]
        fn compare_matches_numbers(a in any::<u64>(), b in any::<u64>(), wa in 1usize..24, wb in 1usize..24) {
            prop_assert_eq!(compare(&format!("{a:0wa$}"), &format!("{b:0wb$}")), a.cmp(&b));
        }
    }
}
