//! A count given in a query string (`?limit=`, `?show_open=`): the one rule
//! both read, so they accept and quote bad input alike.

/// Reads a whole number from 1 to `max`, spaces around it allowed. A bad
/// input comes back as at most 40 of its characters, to quote in the error
/// without echoing an arbitrarily long string.
pub(super) fn count_param(raw: &str, max: u16) -> Result<u16, String> {
    match raw.trim().parse::<u16>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(raw.chars().take(40).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::count_param;

    #[test]
    fn accepts_one_to_max_and_quotes_at_most_40_characters_of_the_rest() {
        assert_eq!(count_param(" 7 ", 10), Ok(7));
        assert_eq!(count_param("1", 10), Ok(1));
        assert_eq!(count_param("10", 10), Ok(10));
        assert_eq!(count_param("0", 10), Err("0".to_owned()));
        assert_eq!(count_param("11", 10), Err("11".to_owned()));
        assert_eq!(count_param("-1", 10), Err("-1".to_owned()));
        assert_eq!(count_param("", 10), Err(String::new()));
        assert_eq!(count_param(&"9".repeat(60), 10), Err("9".repeat(40)));
    }
}
