//! Go duration strings (`8760h`, `1h30m`, `90s`) as CFSSL configs use them.

/// Parses a Go `time.ParseDuration` string with units h, m, s, ms, us/µs, ns.
/// Negative durations and an empty string are errors.
pub fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total: f64 = 0.0;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(format!("negative duration {s:?}"));
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        if num_end == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid number in duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += value * factor;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > 1e11 {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// Formats a duration the way CFSSL prints expiries: whole hours as `8760h`,
/// otherwise `1h30m0s` style (Go's `Duration.String`, to the second).
pub fn format_go_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if m == 0 && sec == 0 {
        format!("{h}h")
    } else if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration as p;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(p("8760h").unwrap(), Duration::from_secs(8760 * 3600));
        assert_eq!(p("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(p("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(p("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(p("0").unwrap(), Duration::ZERO);
        assert_eq!(
            super::format_go_duration(Duration::from_secs(8760 * 3600)),
            "8760h"
        );
        assert_eq!(
            super::format_go_duration(Duration::from_secs(5400)),
            "1h30m0s"
        );
        assert_eq!(super::format_go_duration(Duration::from_secs(90)), "1m30s");
        for bad in ["", "h", "10", "-5h", "5d", "1e9999h", "5h-3m"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
