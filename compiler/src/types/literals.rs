//! Format validation of literals: `email`, `phone`, `url`, `timezone`,
//! dates, times and cron strings. Pure functions returning a help text.

use crate::model::Type;

/// Check a string literal against a formatted type; `Err(help)` if it does not fit.
pub fn check_text(value: &str, ty: &Type) -> Result<(), String> {
    match ty.base() {
        Type::Email => valid_email(value)
            .then_some(())
            .ok_or_else(|| "an e-mail address looks like `name@example.com`".to_string()),
        Type::Phone => valid_phone(value).then_some(()).ok_or_else(|| {
            "a phone number is written in international form, like `+393331234567`".to_string()
        }),
        Type::Url => {
            if value.contains("{{") || valid_url(value) {
                Ok(())
            } else {
                Err("a URL starts with `https://` or `http://` and names a host".to_string())
            }
        }
        Type::Timezone => valid_timezone(value).then_some(()).ok_or_else(|| {
            "a time zone is an IANA name like `Europe/Rome` or `America/New_York`".to_string()
        }),
        Type::Union(members) => {
            if members.iter().any(|m| m == value) {
                Ok(())
            } else {
                Err(format!(
                    "the values are {}",
                    members
                        .iter()
                        .map(|m| format!("`\"{m}\"`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        _ => Ok(()),
    }
}

pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !local.contains(char::is_whitespace)
        && !domain.contains(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

pub fn valid_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let rest_ok = s
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == '+') || " -().".contains(c));
    rest_ok && (7..=15).contains(&digits)
}

pub fn valid_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

pub fn valid_timezone(s: &str) -> bool {
    s == "UTC" || jiff::tz::TimeZone::get(s).is_ok()
}

/// `2026-12-24`
pub fn valid_date(s: &str) -> Result<(), String> {
    s.parse::<jiff::civil::Date>()
        .map(|_| ())
        .map_err(|_| format!("`{s}` is not a date on the calendar"))
}

/// `2026-12-24T09:00:00Z`
pub fn valid_time(s: &str) -> Result<(), String> {
    s.parse::<jiff::Timestamp>()
        .map(|_| ())
        .map_err(|_| format!("`{s}` is not a valid instant"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(valid_email("ann@example.com"));
        assert!(!valid_email("ann@example"));
        assert!(valid_phone("+393331234567"));
        assert!(!valid_phone("call me"));
        assert!(valid_url("https://bot.example/api/send"));
        assert!(!valid_url("bot.example"));
        assert!(valid_timezone("Europe/Rome"));
        assert!(!valid_timezone("Europe/Atlantis"));
        assert!(valid_date("2026-12-24").is_ok());
        assert!(valid_date("2026-02-30").is_err());
        assert!(valid_time("2026-12-24T09:00:00Z").is_ok());
    }
}
