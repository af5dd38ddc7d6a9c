//! Limits on names (variables, environments, jobs, stacks, projects) and
//! how a name is shown in a message: a name from a hostile file must not
//! flood a terminal or carry control characters into it.

/// The longest name Rollway accepts, in characters.
pub const MAX_NAME_LEN: usize = 128;

/// How many characters of a name a message shows before an ellipsis.
const SHOWN_CHARS: usize = 40;

/// Why `name` is too long, or None when it fits.
pub fn name_too_long(name: &str) -> Option<String> {
    let n = name.chars().count();
    (n > MAX_NAME_LEN).then(|| format!("is {n} characters long; names are at most {MAX_NAME_LEN}"))
}

/// `name` for a message: control characters escaped (`\n`, `\u{1b}`) and
/// anything past 40 characters replaced by an ellipsis.
pub fn shown(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_escaped_and_short() {
        let check = |name: &str, expected: &str| assert_eq!(shown(name), expected, "{name:?}");
        check("staging", "staging");
        check("a\nb\u{1b}[31m", "a\\nb\\u{1b}[31m");
        check(&"x".repeat(41), &format!("{}…", "x".repeat(40)));
        check(&"x".repeat(40), &"x".repeat(40));
    }

    #[test]
    fn names_have_a_length_limit() {
        let check = |len: usize, expected: Option<&str>| {
            assert_eq!(name_too_long(&"n".repeat(len)).as_deref(), expected, "{len}");
        };
        check(128, None);
        check(129, Some("is 129 characters long; names are at most 128"));
    }
}
