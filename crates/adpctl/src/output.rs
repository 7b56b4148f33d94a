//! Output as a table for people, or JSON / YAML with the proto's JSON field names for
//! scripts (the same names `buf curl` prints).

use clap::ValueEnum;
use prost_reflect::ReflectMessage;
use serde_json::Value;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// A message as its proto JSON mapping.
pub fn to_json<M: ReflectMessage>(message: &M) -> Value {
    let dynamic = message.transcode_to_dynamic();
    serde_json::to_value(&dynamic).unwrap_or(Value::Null)
}

/// One column: a header and a dotted path into the JSON form.
pub type Column = (&'static str, &'static str);

fn cell(value: &Value, path: &str) -> String {
    let mut current = value;
    for key in path.split('.') {
        match current.get(key) {
            Some(next) => current = next,
            None => return "-".into(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Prints `items` as `format` says; a table shows `columns`.
pub fn print(
    format: Format,
    items: &[Value],
    columns: &[Column],
    single: bool,
) -> anyhow::Result<()> {
    let whole = if single && items.len() == 1 {
        items[0].clone()
    } else {
        Value::Array(items.to_vec())
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&whole)?),
        Format::Yaml => print!("{}", serde_norway::to_string(&whole)?),
        Format::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| columns.iter().map(|(_, path)| cell(item, path)).collect())
                .collect();
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, (header, _))| {
                    rows.iter()
                        .map(|r| r[i].chars().count())
                        .chain([header.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: Vec<String>| {
                let text: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", text.join("  ").trim_end());
            };
            line(columns.iter().map(|(h, _)| (*h).to_owned()).collect());
            for row in rows {
                line(row);
            }
        }
    }
    Ok(())
}
