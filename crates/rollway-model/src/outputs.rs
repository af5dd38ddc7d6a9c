//! How stack outputs reach later stacks: the `ROLLWAY_OUTPUT_<STACK>_<KEY>`
//! variable names and the `{{ stack.key }}` placeholders of commands, shared
//! by the config checks and the deploy engine.

/// `ROLLWAY_OUTPUT_<STACK>_<KEY>`, upper-cased, other characters `_`.
pub fn output_var(stack: &str, key: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("ROLLWAY_OUTPUT_{}_{}", clean(stack), clean(key))
}

/// `{{ stack.key }}` placeholders of a command. Other `{{ … }}` texts (Go
/// templates such as `{{.State}}`) are left alone.
pub fn placeholders(text: &str) -> Vec<(&str, &str, &str)> {
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            break;
        };
        if let Some((stack, key)) = after[..j].trim().split_once('.')
            && word(stack)
            && word(key)
        {
            out.push((&rest[i..i + 2 + j + 2], stack, key));
        }
        rest = &after[j + 2..];
    }
    out
}

/// Replaces every `{{ stack.key }}` placeholder whose value `lookup` knows;
/// the others stay as they are.
pub fn substitute(text: &str, lookup: impl Fn(&str, &str) -> Option<String>) -> String {
    let mut out = text.to_owned();
    for (whole, stack, key) in placeholders(text) {
        if let Some(v) = lookup(stack, key) {
            out = out.replace(whole, &v);
        }
    }
    out
}
