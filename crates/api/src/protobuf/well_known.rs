//! JSON forms of the well-known messages (`Time`, `MicroTime`, `Duration`) exactly as Go's
//! `metav1` marshals them: UTC RFC 3339 and Go's `time.Duration.String()`.

/// `metav1.Time`: RFC 3339 in UTC, whole seconds (`2024-01-02T03:04:05Z`); `None` outside
/// the years 0–9999 that Go refuses to marshal.
pub(super) fn rfc3339(seconds: i64) -> Option<String> {
    let (date, secs_of_day) = civil(seconds)?;
    Some(format!("{date}T{}Z", clock(secs_of_day)))
}

/// `metav1.MicroTime`: RFC 3339 in UTC with exactly six fractional digits.
pub(super) fn rfc3339_micro(seconds: i64, nanos: i32) -> Option<String> {
    let (date, secs_of_day) = civil(seconds)?;
    let micros = nanos.clamp(0, 999_999_999) / 1000;
    Some(format!("{date}T{}.{micros:06}Z", clock(secs_of_day)))
}

/// Go's `time.Duration.String()`: `0s`, `1.5s`, `1m30s`, `1h0m0s`, `250ms`, `40µs`, `7ns`.
pub(super) fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (unit, div) = match n {
            0..=999 => ("ns", 1),
            1_000..=999_999 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{}{unit}", n / div, fraction(n % div, div));
    }
    let secs = n / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = sign.to_string();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!(
        "{s}{}s",
        fraction(n % 1_000_000_000, 1_000_000_000)
    ));
    out
}

/// `.5` for (500, 1000); empty when there is no remainder.
fn fraction(rem: u64, div: u64) -> String {
    if rem == 0 {
        return String::new();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!(".{}", digits.trim_end_matches('0'))
}

fn clock(secs_of_day: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// (`YYYY-MM-DD`, seconds into the day) of a Unix time, proleptic Gregorian calendar.
fn civil(seconds: i64) -> Option<(String, i64)> {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    // Days-to-civil conversion over 400-year eras (Howard Hinnant's public-domain algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some((format!("{year:04}-{month:02}-{day:02}"), secs_of_day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_metav1() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(1_704_164_645).as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            rfc3339(951_782_400).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(rfc3339(-1).as_deref(), Some("1969-12-31T23:59:59Z"));
        assert_eq!(
            rfc3339_micro(1_704_164_645, 123_456_789).as_deref(),
            Some("2024-01-02T03:04:05.123456Z")
        );
        assert_eq!(
            rfc3339(-62_135_596_800).as_deref(),
            Some("0001-01-01T00:00:00Z")
        );
        assert_eq!(
            rfc3339(-62_167_219_201),
            None,
            "year -1 is not representable"
        );
    }

    #[test]
    fn durations_format_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(250_000_000), "250ms");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(7), "7ns");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
    }
}
