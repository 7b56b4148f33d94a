//! Checks a program's settings against the README table that documents them, so the
//! documentation and the declarations cannot drift apart.

use crate::{Fallback, Group, Info, declared};

/// The rows of the first Markdown table after the line containing `marker`.
pub fn table_after<'a>(markdown: &'a str, marker: &str) -> Vec<&'a str> {
    let Some(start) = markdown.find(marker) else {
        return Vec::new();
    };
    markdown[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2) // the header and its rule
        .collect()
}

/// Every problem between `rows` (a README settings table) and `groups`: a documented
/// variable the program does not take, a declared one the table leaves out, or a
/// documented default that is not the declared one.
pub fn mismatches(rows: &[&str], groups: &[Group], config_env: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut documented = Vec::new();
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let names: Vec<&str> = cells[0]
            .split(',')
            .map(|name| name.trim().trim_matches('`'))
            .collect();
        for name in &names {
            documented.push(name.to_string());
            if Some(*name) == config_env {
                continue;
            }
            match declared(groups).find(|info| info.env == *name) {
                None => problems.push(format!("{name} is documented but not a setting")),
                Some(info) => {
                    if let (Some(cell), [_]) = (cells.get(1), names.as_slice()) {
                        check_default(info, cell, &mut problems);
                    }
                }
            }
        }
    }
    for info in declared(groups) {
        if !documented.iter().any(|name| name == info.env) {
            problems.push(format!("{} is a setting the README leaves out", info.env));
        }
    }
    problems
}

/// A cell holding one backticked value documents that default exactly.
fn check_default(info: &Info, cell: &str, problems: &mut Vec<String>) {
    let is_one_value =
        cell.starts_with('`') && cell.ends_with('`') && cell.matches('`').count() == 2;
    if !is_one_value {
        return;
    }
    let text = cell.trim_matches('`');
    match info.fallback {
        Fallback::Value(default) if default == text => {}
        Fallback::Derived(_) => {}
        other => problems.push(format!(
            "{}: the README says the default is {text:?}, the declaration {other:?}",
            info.env
        )),
    }
}
