//! The `Range` request header (RFC 9110 §14), single ranges only.

use crate::blob::ByteRange;

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole file (also for multi-range requests,
    /// which RFC 9110 lets a server ignore).
    Full,
    /// One satisfiable range.
    Partial(ByteRange),
    /// A range outside the file: 416.
    Unsatisfiable,
}

/// Parses `header` against a file of `size` bytes.
pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(_) if size == 0 => return RangeRequest::Unsatisfiable,
            Ok(n) => ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            Err(_) => return RangeRequest::Full,
        },
        // `bytes=A-`: from A to the end.
        (false, true) => match a.parse::<u64>() {
            Ok(start) if start < size => ByteRange {
                start,
                end: size - 1,
            },
            Ok(_) => return RangeRequest::Unsatisfiable,
            Err(_) => return RangeRequest::Full,
        },
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(start), Ok(end)) if start <= end => {
                if start >= size {
                    return RangeRequest::Unsatisfiable;
                }
                ByteRange {
                    start,
                    end: end.min(size - 1),
                }
            }
            _ => return RangeRequest::Full,
        },
        (true, true) => return RangeRequest::Full,
    };
    RangeRequest::Partial(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { start, end })
    }

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 10), RangeRequest::Full);
        assert_eq!(parse(Some("bytes=0-4"), 10), r(0, 4));
        assert_eq!(parse(Some("bytes=5-"), 10), r(5, 9));
        assert_eq!(parse(Some("bytes=-3"), 10), r(7, 9));
        assert_eq!(parse(Some("bytes=-30"), 10), r(0, 9));
        assert_eq!(parse(Some("bytes=8-100"), 10), r(8, 9));
        assert_eq!(parse(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-0"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-1"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1,3-4"), 10), RangeRequest::Full);
        assert_eq!(parse(Some("bytes=4-2"), 10), RangeRequest::Full);
        assert_eq!(parse(Some("items=0-1"), 10), RangeRequest::Full);
    }
}
