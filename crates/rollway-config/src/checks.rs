//! Checks that need the whole file: references between jobs and stacks,
//! cycles in `needs` and `depends_on`, the one release stack, stack outputs
//! and the `{{ stack.key }}` placeholders in stack commands.

use rollway_model::outputs::{output_var, placeholders};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::parse::Marks;
use crate::reader::{At, Ctx, closest};
use crate::types::Config;

pub(crate) fn check(cx: &Ctx<'_>, config: &Config, marks: &Marks) {
    let job_names: Vec<&str> = config.jobs.keys().map(String::as_str).collect();
    for (job, needs) in &marks.needs {
        for n in needs {
            if !config.jobs.contains_key(&n.v) {
                cx.report(
                    n.at,
                    format!("job '{job}' needs '{}', which is not a job", n.v),
                    unknown_hint(&n.v, &job_names, "jobs"),
                );
            }
        }
    }
    for (place, j) in &marks.job_refs {
        if !config.jobs.contains_key(&j.v) {
            cx.report(
                j.at,
                format!("'{}' in {place} is not a job", j.v),
                unknown_hint(&j.v, &job_names, "jobs"),
            );
        }
    }
    report_cycles(
        cx,
        &marks.needs,
        "needs",
        "remove one of these needs so the jobs can run in order",
    );

    let stack_names: Vec<&str> = config.stacks.keys().map(String::as_str).collect();
    for (stack, deps) in &marks.depends_on {
        for d in deps {
            if !config.stacks.contains_key(&d.v) {
                cx.report(
                    d.at,
                    format!("stack '{stack}' depends on '{}', which is not a stack", d.v),
                    unknown_hint(&d.v, &stack_names, "stacks"),
                );
            }
        }
    }
    report_cycles(
        cx,
        &marks.depends_on,
        "depends_on",
        "remove one of these dependencies so the stacks have an order",
    );
    check_release_stacks(cx, config, marks);
    check_outputs(cx, marks);
    check_placeholders(cx, config, marks);
}

fn unknown_hint(name: &str, known: &[&str], section: &str) -> String {
    match closest(name, known.iter().copied()) {
        Some(c) => format!("did you mean '{c}'?"),
        None => format!("define [{section}.{name}], or remove the reference"),
    }
}

/// One diagnostic per strongly connected part of the graph, at the first edge
/// of the shortest cycle through its first node (by name), printing the path.
/// Linear in nodes and edges: the parts come from one pass of Tarjan's
/// algorithm, and each cycle is searched for inside its own part.
fn report_cycles(cx: &Ctx<'_>, edges: &BTreeMap<String, Vec<At<String>>>, label: &str, hint: &str) {
    let names: Vec<&str> = edges.keys().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let succ: Vec<Vec<usize>> = edges
        .values()
        .map(|es| es.iter().filter_map(|e| index.get(e.v.as_str()).copied()).collect())
        .collect();
    let component = strongly_connected_components(&succ);
    // Nodes are numbered in name order, so a part's first node by name is
    // the first node met of that part.
    let mut reported = vec![false; names.len()];
    for start in 0..names.len() {
        let part = component[start];
        if reported[part] {
            continue;
        }
        reported[part] = true;
        // Breadth-first inside the part: the shortest way back to `start`.
        let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(n) = queue.pop_front() {
            for &next in &succ[n] {
                if next == start {
                    last = Some(n);
                    break 'search;
                }
                if component[next] == part && !parent.contains_key(&next) {
                    parent.insert(next, n);
                    queue.push_back(next);
                }
            }
        }
        let Some(last) = last else {
            continue;
        };
        let mut path = vec![last];
        let mut cur = last;
        while cur != start {
            match parent.get(&cur) {
                Some(&p) => {
                    cur = p;
                    path.push(cur);
                }
                None => break,
            }
        }
        path.reverse();
        path.push(start);
        let second = names[path.get(1).copied().unwrap_or(start)];
        let at = edges
            .get(names[start])
            .and_then(|es| es.iter().find(|e| e.v == second))
            .map_or(0, |e| e.at);
        let shown: Vec<&str> = path.iter().map(|&i| names[i]).collect();
        cx.report(at, format!("{label} cycle: {}", shown.join(" → ")), hint);
    }
}

/// The strongly connected part of every node (Tarjan's algorithm, without
/// recursion so a long chain cannot overflow the stack).
fn strongly_connected_components(succ: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = succ.len();
    let mut order = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut component = vec![UNSEEN; n];
    let mut stack = Vec::new();
    let mut next_order = 0;
    let mut parts = 0;
    for root in 0..n {
        if order[root] != UNSEEN {
            continue;
        }
        // (node, index of its next successor to look at)
        let mut work = vec![(root, 0usize)];
        order[root] = next_order;
        low[root] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if let Some(&w) = succ[v].get(*i) {
                *i += 1;
                if order[w] == UNSEEN {
                    order[w] = next_order;
                    low[w] = next_order;
                    next_order += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(u, _)) = work.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == order[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component[w] = parts;
                    if w == v {
                        break;
                    }
                }
                parts += 1;
            }
        }
    }
    component
}

fn check_release_stacks(cx: &Ctx<'_>, config: &Config, marks: &Marks) {
    let mut release: Vec<(usize, &str)> = config
        .stacks
        .iter()
        .filter(|(_, s)| s.is_release())
        .map(|(name, _)| (marks.stacks.get(name).copied().unwrap_or(0), name.as_str()))
        .collect();
    release.sort();
    if let Some((_, first)) = release.first() {
        for (at, name) in release.iter().skip(1) {
            cx.report(
                *at,
                format!("stacks '{first}' and '{name}' both have no deploy command, so both would ship the artifact"),
                "give all but one of them a deploy command; one release stack ships the artifact",
            );
        }
    }
}

fn check_outputs(cx: &Ctx<'_>, marks: &Marks) {
    let mut outputs: Vec<&(String, At<String>)> = marks.outputs.iter().collect();
    outputs.sort_by_key(|(_, o)| o.at);
    let mut seen: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for (stack, key) in outputs {
        let var = output_var(stack, &key.v);
        match seen.get(&var) {
            Some((s2, k2)) if (*s2, *k2) != (stack.as_str(), key.v.as_str()) => cx.report(
                key.at,
                format!(
                    "output '{}' of stack '{stack}' and output '{k2}' of stack '{s2}' both become {var}",
                    key.v
                ),
                "rename one of them",
            ),
            Some(_) => {}
            None => {
                seen.insert(var, (stack, &key.v));
            }
        }
    }
}

fn check_placeholders(cx: &Ctx<'_>, config: &Config, marks: &Marks) {
    for (stack, key, text, range) in &marks.commands {
        let mut upstream = ancestors(config, stack);
        // verify and rollback run after deploy, so the stack's own outputs are known.
        if matches!(*key, "verify" | "rollback") {
            upstream.insert(stack.as_str());
        }
        for (whole, from, out) in placeholders(text) {
            let raw = cx.src.get(range.clone()).unwrap_or("");
            let at = raw.find(whole).map_or(range.start, |i| range.start + i);
            let Some(source) = config.stacks.get(from) else {
                let names: Vec<&str> = config.stacks.keys().map(String::as_str).collect();
                cx.report(
                    at,
                    format!("{whole} in stack '{stack}' names stack '{from}', which is not a stack"),
                    unknown_hint(from, &names, "stacks"),
                );
                continue;
            };
            if !upstream.contains(from) {
                cx.report(
                    at,
                    format!(
                        "{whole} in stack '{stack}' uses an output of '{from}', which '{stack}' does not depend on"
                    ),
                    format!("add \"{from}\" to depends_on of [stacks.{stack}]"),
                );
                continue;
            }
            if !source.outputs.iter().chain(&source.secret_outputs).any(|o| o == out) {
                cx.report(
                    at,
                    format!("{whole} in stack '{stack}': stack '{from}' declares no output '{out}'"),
                    format!("add \"{out}\" to outputs of [stacks.{from}], or fix the name"),
                );
            }
        }
    }
}

/// Every stack `name` depends on, directly or not.
fn ancestors<'c>(config: &'c Config, name: &str) -> BTreeSet<&'c str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = config
        .stacks
        .get(name)
        .map(|s| s.depends_on.iter().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(n) = stack.pop() {
        if let Some((k, s)) = config.stacks.get_key_value(n)
            && seen.insert(k.as_str())
        {
            stack.extend(s.depends_on.iter().map(String::as_str));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_stack_dot_key_only() {
        assert_eq!(
            placeholders("psql {{ database.HOST }} -p {{db.PORT}} {{.State}} {{ json .x }} {{ a.b.c }}"),
            vec![
                ("{{ database.HOST }}", "database", "HOST"),
                ("{{db.PORT}}", "db", "PORT")
            ]
        );
        assert!(placeholders("{{ unclosed.x").is_empty());
    }

    #[test]
    fn output_variables_are_upper_cased() {
        assert_eq!(output_var("my-db", "host.name"), "ROLLWAY_OUTPUT_MY_DB_HOST_NAME");
    }
}
