//! A TCP relay on loopback that a test can cut and restore, standing in for a network
//! partition or a stopped database without stopping the machine's shared server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards every connection to `target` until [`TcpRelay::cut`]; then closes the open
/// ones and every new one at once, until [`TcpRelay::restore`].
#[derive(Debug)]
pub struct TcpRelay {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Bumped on every cut: open relays end when it changes.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpRelay {
    pub async fn start(target: SocketAddr) -> TcpRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let task = {
            let cut = cut.clone();
            let cuts = cuts.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if cut.load(Ordering::Acquire) {
                        drop(client);
                        continue;
                    }
                    let mut ended = cuts.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = ended.changed() => {}
                        }
                    });
                }
            })
        };
        TcpRelay {
            addr,
            cut,
            cuts,
            task,
        }
    }

    /// Closes every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::Release);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh PostgreSQL database (see [`crate::pg::fresh_database`]) reached through a
/// relay the test can cut: the relay and the URL to give the control plane.
pub async fn relayed_fresh_database() -> (TcpRelay, String) {
    let url = crate::pg::fresh_database().await;
    let server: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let relay = TcpRelay::start(server).await;
    let relayed = url.replace(&server.to_string(), &relay.addr.to_string());
    assert_ne!(relayed, url, "ADP_TEST_DATABASE_URL must name {server}");
    (relay, relayed)
}
