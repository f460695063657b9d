//! `resource.Quantity` strings (`100m`, `1.5`, `128Mi`, `2e3`) parsed exactly: an integer
//! mantissa and a power of ten, so `250m` CPU and `64Mi` memory take one path with no
//! floating-point rounding. Used by validation, the scheduler and the node agent.

/// Parses a quantity into thousandths of its unit, rounding up (`"100m"` → 100, `"1.5"` → 1500).
pub fn parse_milli(s: &str) -> Option<i64> {
    let (mantissa, exp10) = parse_scaled(s)?;
    i64::try_from(scale_ceil(mantissa, exp10 + 3)?).ok()
}

/// Parses a quantity into whole units, rounding up (`"1Ki"` → 1024, `"1.5k"` → 1500).
pub fn parse_units(s: &str) -> Option<i64> {
    let (mantissa, exp10) = parse_scaled(s)?;
    i64::try_from(scale_ceil(mantissa, exp10)?).ok()
}

/// Splits a quantity into an integer mantissa and a power of ten (binary suffixes are folded
/// into the mantissa). Grammar: <signedNumber><suffix>, suffix one of the binary SI (Ki…Ei),
/// decimal SI (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
pub fn parse_scaled(s: &str) -> Option<(i128, i32)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .chars()
        .chain(frac_part.chars())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in int_part.chars().chain(frac_part.chars()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c.to_digit(10)?))?;
    }
    let mut exp10 = -i32::try_from(frac_part.len()).ok()?;
    let binary = |power: u32| 1024_i128.checked_pow(power);
    match suffix {
        "" => {}
        "Ki" => mantissa = mantissa.checked_mul(binary(1)?)?,
        "Mi" => mantissa = mantissa.checked_mul(binary(2)?)?,
        "Gi" => mantissa = mantissa.checked_mul(binary(3)?)?,
        "Ti" => mantissa = mantissa.checked_mul(binary(4)?)?,
        "Pi" => mantissa = mantissa.checked_mul(binary(5)?)?,
        "Ei" => mantissa = mantissa.checked_mul(binary(6)?)?,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        other => {
            let e = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))?;
            exp10 += e.parse::<i32>().ok()?;
        }
    }
    Some((if negative { -mantissa } else { mantissa }, exp10))
}

/// `mantissa * 10^exp10`, rounded up (towards +infinity) when `exp10` is negative.
fn scale_ceil(mantissa: i128, exp10: i32) -> Option<i128> {
    if exp10 >= 0 {
        mantissa.checked_mul(10_i128.checked_pow(u32::try_from(exp10).ok()?)?)
    } else {
        let div = 10_i128.checked_pow(u32::try_from(-exp10).ok()?)?;
        let q = mantissa.div_euclid(div);
        Some(if mantissa.rem_euclid(div) != 0 {
            q + 1
        } else {
            q
        })
    }
}

/// The quantity as a floating-point number of units (for comparisons in validation).
pub fn to_f64(s: &str) -> Option<f64> {
    let (mantissa, exp10) = parse_scaled(s)?;
    Some(mantissa as f64 * 10f64.powi(exp10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_binary_and_exponent_suffixes() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("0.0001"), Some(1), "rounds up");
        assert_eq!(parse_milli("2e3"), Some(2_000_000));
        assert_eq!(parse_units("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(parse_units("1.5k"), Some(1500));
        assert_eq!(parse_units("-1"), Some(-1));
        assert_eq!(to_f64("250m"), Some(0.25));
        assert_eq!(parse_units("12x"), None);
        assert_eq!(parse_units(""), None);
    }
}
