//! Waiting for what the system does on its own time (a config change reaching a proxy,
//! a log line, a revocation) without fixed sleeps: poll until it holds, and fail naming
//! what was awaited and the last thing seen.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// How often a condition is looked at again.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` every [`POLL`] until it returns `Ok`, and returns that value; after
/// `within`, panics with `what` and the last `Err` the probe returned.
pub async fn eventually<T, E, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("{what}: not within {within:?}; last seen: {last:?}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Asserts that `condition` (which may `.await`) becomes true within `within`, polling
/// every [`POLL`]; an optional format string says what was awaited.
#[macro_export]
macro_rules! assert_eventually {
    ($within:expr, $condition:expr $(,)?) => {
        $crate::assert_eventually!($within, $condition, "{}", stringify!($condition))
    };
    ($within:expr, $condition:expr, $($message:tt)+) => {{
        let within: ::std::time::Duration = $within;
        let deadline = ::tokio::time::Instant::now() + within;
        loop {
            if $condition {
                break;
            }
            if ::tokio::time::Instant::now() >= deadline {
                panic!("not within {:?}: {}", within, format_args!($($message)+));
            }
            ::tokio::time::sleep($crate::eventually::POLL).await;
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_once_the_probe_holds_and_fails_naming_what_it_waited_for() {
        let mut calls = 0;
        let value = eventually("the third call", Duration::from_secs(5), || {
            calls += 1;
            let result = if calls >= 3 { Ok(calls) } else { Err(calls) };
            async move { result }
        })
        .await;
        assert_eq!(value, 3);

        let failed = tokio::spawn(async {
            eventually("never", Duration::from_millis(50), || async {
                Err::<(), _>("still no")
            })
            .await
        })
        .await
        .unwrap_err();
        let message = failed.into_panic();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("never") && message.contains("still no"),
            "{message}"
        );

        let mut n = 0;
        crate::assert_eventually!(Duration::from_secs(5), {
            n += 1;
            n > 2
        });
    }
}
