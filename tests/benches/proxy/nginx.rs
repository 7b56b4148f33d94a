//! Leg (c): the Debian nginx as a keep-alive reverse proxy that adds a static
//! `Authorization` header, run in the foreground from a config in its own temp dir.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{SERVER_NAME, UPSTREAM_TOKEN};

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the effective user
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str, log: Option<&Path>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        let log = || {
            log.and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        };
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited with {status} before listening on {addr}\n{}",
                log()
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} is not listening on {addr} after 10 s\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// nginx.conf for a keep-alive reverse proxy on `127.0.0.1:listen` that maps
/// `/mcp/{server}` to the upstream's `/mcp` and sets a static `Authorization` header.
/// Every path nginx writes (pid, error log, temp dirs) is under `dir`.
pub fn nginx_config(dir: &Path, listen: u16, upstream: SocketAddr, workers: &str) -> String {
    let d = dir.display();
    let mut conf = String::new();
    if running_as_root() {
        // workers would otherwise drop to `nobody`, who cannot enter the 0700 temp dir
        conf.push_str("user root root;\n");
    }
    write!(
        conf,
        r#"daemon off;
master_process on;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # nginx closes a client connection after 1000 requests by default; the other legs never do
    keepalive_requests 1000000;
    keepalive_timeout 75s;

    upstream mcp_echo {{
        server {upstream};
        keepalive 64;
        keepalive_requests 1000000;
    }}

    server {{
        listen 127.0.0.1:{listen};

        location /mcp/ {{
            # /mcp/{{server_name}} → upstream /mcp
            rewrite ^/mcp/[^/]+$ /mcp break;
            proxy_pass http://mcp_echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {UPSTREAM_TOKEN}";
            # as an MCP proxy must, for SSE responses
            proxy_buffering off;
        }}
    }}
}}
"#
    )
    .unwrap();
    conf
}

/// nginx in the foreground (`daemon off`) with a config in its own temp dir; killed on drop.
pub struct Nginx {
    child: Child,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub version: String,
}

impl Nginx {
    pub async fn start(nginx: &Path, upstream: SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let workers = std::env::var("ADP_BENCH_NGINX_WORKERS").unwrap_or_else(|_| "auto".into());
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_config(dir.path(), port, upstream, &workers)).unwrap();
        let error_log = dir.path().join("error.log");
        let version = std::process::Command::new(nginx)
            .arg("-v")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
            .unwrap_or_default();
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // a last resort: SIGKILL reaches only the master, Drop asks it to quit first
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", nginx.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_port(addr, &mut child, "nginx", Some(&error_log)).await;
        Nginx {
            child,
            dir,
            addr,
            version,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp/{SERVER_NAME}", self.addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers and exits; kill_on_drop's SIGKILL would
        // leave the workers running
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            for _ in 0..100 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
