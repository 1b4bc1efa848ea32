//! Wildcard matching as IAM does it: `*` matches any run of characters (also none, also `:` and
//! `/`), `?` matches exactly one character, everything else matches itself.
//!
//! Case rules (IAM JSON policy elements reference, "Action" and "Resource"):
//! - action names are case-insensitive (`EC2:deletesnapshot` is `ec2:DeleteSnapshot`);
//! - resource ARNs are case-sensitive;
//! - `StringLike` is case-sensitive; `ArnLike` matches each of the six colon-separated ARN parts
//!   separately, case-sensitively (IAM condition operators reference, "Amazon Resource Name (ARN)
//!   condition operators").
//!
//! The matcher is the classic greedy two-cursor algorithm with a single backtrack point: time is
//! O(pattern × text) in the worst case and memory is the two character vectors, whatever the
//! input, so a hostile pattern such as `*a*a*a*a*b` cannot blow up.

/// Does `text` match the wildcard `pattern`, comparing characters exactly?
#[must_use]
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    match_chars(&p, &t)
}

/// Does `text` match the wildcard `pattern`, ignoring case (Unicode lower-casing of both)?
#[must_use]
pub fn wildcard_match_ignore_case(pattern: &str, text: &str) -> bool {
    wildcard_match(&pattern.to_lowercase(), &text.to_lowercase())
}

/// An action (`ec2:DeleteSnapshot`) against an Action/NotAction entry (`ec2:Delete*`, `*`).
#[must_use]
pub fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard_match_ignore_case(pattern, action)
}

/// A resource ARN against a Resource/NotResource entry, case-sensitively.
#[must_use]
pub fn resource_matches(pattern: &str, resource: &str) -> bool {
    wildcard_match(pattern, resource)
}

/// `ArnLike`/`ArnEquals`: both must have the six parts `arn:partition:service:region:account:resource`
/// (the resource part may itself contain colons); each part is wildcard-matched on its own, so a
/// `*` in the region part cannot swallow the account part.
#[must_use]
pub fn arn_like(pattern: &str, arn: &str) -> bool {
    let (Some(p), Some(a)) = (arn_parts(pattern), arn_parts(arn)) else {
        return false;
    };
    p.iter().zip(a.iter()).all(|(p, a)| wildcard_match(p, a))
}

/// Split an ARN into its six parts, or `None` when it has fewer than six.
#[must_use]
pub fn arn_parts(arn: &str) -> Option<[&str; 6]> {
    let mut it = arn.splitn(6, ':');
    let parts = [it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?];
    Some(parts)
}

fn match_chars(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position of the last `*` seen in the pattern and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last star swallow one more character and retry from just after it.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_star_and_question_mark() {
        assert!(wildcard_match("abc", "abc"));
        assert!(!wildcard_match("abc", "abd"));
        assert!(!wildcard_match("abc", "abcd"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "anything:at/all"));
        assert!(wildcard_match("a*", "a"));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(!wildcard_match("a*c", "abbbd"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(wildcard_match("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!wildcard_match("*a*b*c*", "xxaxxcxxbxx"));
        assert!(wildcard_match("?", "é"));
        assert!(wildcard_match("**", "x"));
        assert!(!wildcard_match("", "x"));
        assert!(wildcard_match("", ""));
    }

    #[test]
    fn backtracking_is_bounded() {
        let text = "a".repeat(20_000);
        let pattern = "*a".repeat(50) + "b";
        assert!(!wildcard_match(&pattern, &text));
    }

    #[test]
    fn case_rules() {
        assert!(action_matches("ec2:DeleteSnapshot", "EC2:deletesnapshot"));
        assert!(action_matches("EC2:Delete*", "ec2:DeleteVpc"));
        assert!(!resource_matches("arn:aws:ec2:*:*:snapshot/SNAP-*", "arn:aws:ec2:us-east-1:1:snapshot/snap-1"));
        assert!(wildcard_match_ignore_case("SAS_*", "sas_agentless"));
    }

    #[test]
    fn arn_parts_match_separately() {
        assert!(arn_like("arn:aws:s3:*:*:bucket", "arn:aws:s3:::bucket"));
        assert!(arn_like("arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:111122223333:instance/i-1"));
        assert!(arn_like("arn:aws:logs:*:*:log-group:x:*", "arn:aws:logs:eu-west-1:1:log-group:x:log-stream:y"));
        // A star in the account part does not cross into the resource part (a whole-string match would).
        assert!(!arn_like("arn:aws:ec2:*:*:instance/i-1", "arn:aws:ec2:us-east-1:1:x:instance/i-1"));
        assert!(wildcard_match("arn:aws:ec2:*:*:instance/i-1", "arn:aws:ec2:us-east-1:1:x:instance/i-1"));
        assert!(!arn_like("arn:aws:ec2:*:instance/i-1", "arn:aws:ec2:us-east-1:1:instance/i-1"));
        assert!(!arn_like("arn:aws:ec2:*:*:*", "not-an-arn"));
        assert_eq!(arn_parts("arn:a:b:c:d:e:f"), Some(["arn", "a", "b", "c", "d", "e:f"]));
    }
}
