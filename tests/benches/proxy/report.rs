//! The report: medians over the rounds, the table per phase, and the targets checked.

use super::oha::{Load, Measurement};

/// `arg` as a POSIX shell word, so the printed oha command can be pasted.
pub fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The medians over the rounds of one leg in one phase.
pub struct Summary {
    label: &'static str,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    failed: u64,
    rounds: Vec<f64>,
}

pub fn summarize(label: &'static str, runs: &[Measurement]) -> Summary {
    Summary {
        label,
        rps: median(runs.iter().map(|m| m.rps).collect()),
        p50_ms: median(runs.iter().map(|m| m.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|m| m.p99_ms).collect()),
        non_2xx: runs.iter().map(Measurement::non_2xx).sum(),
        failed: runs.iter().map(Measurement::failed).sum(),
        rounds: runs.iter().map(|m| m.rps).collect(),
    }
}

pub fn print_table(load: &Load, rows: &[Summary]) {
    let how = match load.rate {
        Some(rate) => format!("{rate} req/s offered, {} connections", load.concurrency),
        None => format!("{} connections, closed loop", load.concurrency),
    };
    println!("\n{} — {how} (medians of rounds)", load.phase);
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>8}  req/s per round",
        "target", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors"
    );
    for row in rows {
        let rounds: Vec<String> = row.rounds.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{:<10} {:>10.0} {:>9.3} {:>9.3} {:>9} {:>8}  {}",
            row.label,
            row.rps,
            row.p50_ms,
            row.p99_ms,
            row.non_2xx,
            row.failed,
            rounds.join(" ")
        );
    }
}

/// Prints the ratios for one phase; returns the targets missed.
pub fn print_ratios(load: &Load, rows: &[Summary]) -> Vec<String> {
    let find = |label: &str| rows.iter().find(|r| r.label == label);
    let (direct, proxy, nginx) = (find("direct"), find("adp-proxy"), find("nginx"));
    let mut missed = Vec::new();
    let mut check = |ok: bool, text: String| {
        println!("  {} {text}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            missed.push(format!("{}: {text}", load.phase));
        }
    };
    if let (Some(a), Some(c)) = (direct, nginx) {
        println!(
            "  info nginx/direct throughput {:.2}, nginx p99 added {:+.3} ms",
            c.rps / a.rps,
            c.p99_ms - a.p99_ms
        );
    }
    let Some(b) = proxy else {
        println!("  (leg b, adp-proxy, not configured: see start_proxy_leg)");
        return missed;
    };
    if let Some(a) = direct {
        let added = b.p99_ms - a.p99_ms;
        if load.rate.is_none() {
            check(
                b.rps / a.rps >= 0.7,
                format!("adp-proxy/direct throughput {:.2} (≥ 0.70)", b.rps / a.rps),
            );
            println!("  info adp-proxy p99 added {added:+.3} ms (saturated: mostly queueing)");
        } else {
            check(
                added <= 1.0,
                format!("adp-proxy p99 added {added:+.3} ms (≤ 1 ms)"),
            );
        }
    }
    if let Some(c) = nginx
        && load.rate.is_none()
    {
        check(
            b.rps >= c.rps,
            format!("adp-proxy/nginx throughput {:.2} (≥ 1.00)", b.rps / c.rps),
        );
    }
    if b.non_2xx + b.failed > 0 {
        check(
            false,
            format!(
                "adp-proxy answered {} non-2xx, {} failed",
                b.non_2xx, b.failed
            ),
        );
    }
    missed
}
