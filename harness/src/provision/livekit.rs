//! A LiveKit node in a container: config from the plan, readiness by `GET /`. A node
//! that exits instead (LiveKit refused its config) fails the run at once, with LiveKit's
//! own message and, where it names a line of the config, the key that line sets.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_core::plan::SfuPlan;
use harness_core::sfu_config::{self, SIGNAL_PORT};
use harness_core::sfu_file;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::docker::{ContainerSetup, DockerError, RunNetwork, RunResources};

/// How long a node may take to answer 200 on `GET /`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(
        "livekit node {node} did not answer 200 on GET / within {timeout:?}; last log lines:\n{logs}"
    )]
    NotReady {
        node: String,
        timeout: Duration,
        logs: String,
    },
    #[error(
        "livekit node {node} exited {after:.1?} after it started: LiveKit refused its config\n{logs}{keys}"
    )]
    Refused {
        node: String,
        after: Duration,
        /// LiveKit's last log lines, the API secret scrubbed.
        logs: String,
        /// One line per config line LiveKit's message names: the key it sets.
        keys: String,
    },
}

/// A running node. `api_secret` is for minting tokens only; never print it.
pub struct SfuNode {
    pub name: String,
    pub container_id: String,
    pub ip: IpAddr,
    pub signal_url: String,
    pub api_key: String,
    pub api_secret: Arc<str>,
    /// The config as started, secrets redacted (for reports).
    pub config_redacted: serde_json::Value,
    pub ready_after: Duration,
    /// LiveKit's own node id (`ND_…`), from its start-up log; empty if not found.
    pub node_id: String,
    /// Keys of the user's config file the node did not take as written.
    pub file_overrides: Vec<sfu_file::Override>,
}

/// Credentials for the run: the scenario's, or fresh random ones.
pub fn credentials(plan: &SfuPlan) -> (String, Arc<str>) {
    use rand::Rng;
    let mut rng = rand::rng();
    let key = plan
        .api_key
        .clone()
        .unwrap_or_else(|| format!("APIh{:012x}", rng.random::<u64>() & 0xffff_ffff_ffff));
    let secret = plan.api_secret.clone().unwrap_or_else(|| {
        (0..48)
            .map(|_| {
                char::from(
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        [rng.random_range(0..62)],
                )
            })
            .collect()
    });
    (key, secret.into())
}

/// Starts node `name` and waits until it is ready.
pub async fn start_node(
    res: &mut RunResources,
    plan: &SfuPlan,
    name: &str,
    network: &RunNetwork,
    extra: &[RunNetwork],
    api_key: &str,
    api_secret: &Arc<str>,
) -> Result<SfuNode, SfuError> {
    let overrides: serde_json::Map<String, serde_json::Value> = plan
        .config_overrides
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (config, file_overrides) = sfu_config::livekit_config_with_file(
        api_key,
        api_secret,
        plan.config_file.as_ref().map(|f| &f.map),
        &overrides,
    );
    let t0 = Instant::now();
    // One key per line, so a line LiveKit's refusal names is one key.
    let rendered = sfu_config::render(&config);
    let mut env = vec![format!("LIVEKIT_CONFIG={rendered}")];
    env.extend(plan.env.iter().map(|(k, v)| format!("{k}={}", v.expose())));
    let (container_id, ip) = res
        .start_container(
            name,
            &plan.image,
            ContainerSetup {
                env,
                ..Default::default()
            },
            network,
            extra,
            "sfu",
        )
        .await?;
    let deadline = t0 + READY_TIMEOUT;
    loop {
        if http_status(ip, SIGNAL_PORT, "/").await == Some(200) {
            break;
        }
        // LiveKit's last log lines, with no secret of the run in them.
        let logs_tail = || async {
            let mut logs = res.logs_tail(&container_id, 20).await;
            for secret in std::iter::once(&**api_secret).chain(plan.secrets()) {
                logs = logs.replace(secret, "<redacted>");
            }
            logs
        };
        if super::docker::is_running(res.docker(), &container_id).await == Some(false) {
            let logs = logs_tail().await;
            let keys = refused_keys(&logs, &rendered, &overrides, plan.config_file.as_ref());
            return Err(SfuError::Refused {
                node: name.to_owned(),
                after: t0.elapsed(),
                logs,
                keys,
            });
        }
        if Instant::now() > deadline {
            let logs = logs_tail().await;
            return Err(SfuError::NotReady {
                node: name.to_owned(),
                timeout: READY_TIMEOUT,
                logs,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = t0.elapsed();
    let node_id = node_id_in(&res.logs_tail(&container_id, 50).await);
    Ok(SfuNode {
        name: name.to_owned(),
        container_id,
        ip,
        signal_url: format!("ws://{ip}:{SIGNAL_PORT}"),
        api_key: api_key.to_owned(),
        api_secret: api_secret.clone(),
        config_redacted: sfu_config::redacted(&config),
        ready_after,
        node_id,
        file_overrides,
    })
}

/// For each config line LiveKit's message names, the key that line sets and where the
/// value came from (the scenario's `[sfu.config]`, the user's config file and its line,
/// or the harness's defaults).
fn refused_keys(
    logs: &str,
    rendered: &str,
    overrides: &serde_json::Map<String, serde_json::Value>,
    file: Option<&harness_core::scenario::LoadedConfigFile>,
) -> String {
    let mut out = String::new();
    for line in sfu_config::lines_named(logs) {
        let Some(key) = sfu_config::key_at_line(rendered, line) else {
            continue;
        };
        let from_scenario = sfu_file::lookup_in(overrides, &key);
        let in_file = file.and_then(|f| {
            sfu_file::lookup_in(&f.map, &key)?;
            Some(match sfu_file::line_of(&f.text, &key) {
                Some(n) => format!("{}:{n}", f.path),
                None => f.path.clone(),
            })
        });
        let whence = if let (None, Some(at)) = (from_scenario, in_file) {
            format!("your config file, {at}")
        } else if from_scenario.is_none() {
            "a harness default".to_owned()
        } else {
            let (table, leaf) = key.rsplit_once('.').unwrap_or(("", &key));
            let table = if table.is_empty() {
                "[sfu.config]".to_owned()
            } else {
                format!("[sfu.config.{table}]")
            };
            format!("the scenario's {table} {leaf}")
        };
        out.push_str(&format!(
            "\nline {line} of the config LiveKit read is `{key}`, from {whence}"
        ));
    }
    out
}

/// The first `"nodeID": "ND_…"` in LiveKit's log lines.
fn node_id_in(logs: &str) -> String {
    logs.split("\"nodeID\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|id| id.starts_with("ND_"))
        .unwrap_or_default()
        .to_owned()
}

/// The image `scripts/build-redis-image.sh` builds (Debian's redis-server).
pub const REDIS_IMAGE: &str = "sfu-harness/redis:7";

/// Starts the run's Redis (for multi-node LiveKit) and waits until it takes
/// connections; returns its address.
pub async fn start_redis(
    res: &mut RunResources,
    network: &RunNetwork,
) -> Result<std::net::SocketAddr, SfuError> {
    let (container_id, ip) = res
        .start_container(
            "redis",
            REDIS_IMAGE,
            ContainerSetup::default(),
            network,
            &[],
            "redis",
        )
        .await?;
    let addr = std::net::SocketAddr::new(ip, 6379);
    wait_ready(res, &container_id, "redis", || async {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await?;
    Ok(addr)
}

/// Polls `ready` every 100 ms for up to 10 s; then the container's last log lines make
/// the error.
async fn wait_ready<F, Fut>(
    res: &RunResources,
    container_id: &str,
    node: &str,
    ready: F,
) -> Result<(), SfuError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let timeout = Duration::from_secs(10);
    let deadline = Instant::now() + timeout;
    while !ready().await {
        if Instant::now() > deadline {
            return Err(SfuError::NotReady {
                node: node.into(),
                timeout,
                logs: res.logs_tail(container_id, 20).await,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The image `scripts/build-nginx-image.sh` builds (Debian's nginx).
pub const NGINX_IMAGE: &str = "sfu-harness/nginx:1.22";

/// Starts a real nginx on `network` in front of `upstream` (LiveKit's signal port), with
/// the config `plan` asks for, written to `conf` (an absolute path in the run directory:
/// it is bind-mounted, and the user can read what nginx ran with); returns its address.
pub async fn start_nginx(
    res: &mut RunResources,
    network: &RunNetwork,
    plan: &harness_core::plan::NginxPlan,
    upstream: std::net::SocketAddr,
    conf: &std::path::Path,
) -> Result<std::net::SocketAddr, SfuError> {
    std::fs::write(conf, plan.config(&upstream.to_string())).map_err(|e| {
        SfuError::Docker(DockerError::Other(format!(
            "cannot write {}: {e}",
            conf.display()
        )))
    })?;
    let setup = ContainerSetup {
        binds: vec![format!("{}:/etc/nginx/nginx.conf:ro", conf.display())],
        ..Default::default()
    };
    let (container_id, ip) = res
        .start_container("nginx", NGINX_IMAGE, setup, network, &[], "nginx")
        .await?;
    let addr = std::net::SocketAddr::new(ip, 80);
    // Ready when it answers (through it, LiveKit's health check).
    let path = format!("{}/", plan.url_path());
    wait_ready(res, &container_id, "nginx", || async {
        http_status(ip, 80, &path).await.is_some()
    })
    .await?;
    Ok(addr)
}

/// Status code of a plain `GET path` (HTTP/1.0), or `None` if there is no answer.
pub async fn http_status(ip: IpAddr, port: u16, path: &str) -> Option<u16> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        let line = std::str::from_utf8(&buf[..n]).ok()?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}
