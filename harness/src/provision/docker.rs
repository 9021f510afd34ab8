//! The container engine, through bollard, and everything a run creates in it.
//!
//! Why bollard and not testcontainers: testcontainers 0.28 builds its bollard client with
//! a fixed Docker API version (1.53) and never negotiates; the engine Debian ships
//! (docker.io 20.10, API 1.41) refuses every such request ("client version 1.53 is too
//! new"). bollard itself negotiates, and owning the calls gives the harness what its
//! faults need anyway (kill, restart, networks with labels).
//!
//! Every object a run creates carries [`LABEL_RUN`] (its run id) and [`LABEL_PID`] (the
//! harness process that owns it). [`RunResources`] removes them at the end; its `Drop`
//! removes them too (through the docker CLI, which needs no async runtime) if the run
//! ended by an error or a panic; [`sweep_dead_runs`] removes what a SIGKILLed run left.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveContainerOptionsBuilder,
};

/// Label on every object: the run id.
pub const LABEL_RUN: &str = "sfu-harness.run";
/// Label on every object: the pid of the harness process that made it.
pub const LABEL_PID: &str = "sfu-harness.pid";

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "no Docker engine answers ({0}); run scripts/setup-docker.sh (installs docker.io and starts dockerd) or start your engine"
    )]
    Unreachable(String),
    #[error("docker {what} failed: {source}")]
    Call {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "image {0} is not present; run scripts/setup.sh (or scripts/build-sfu-image.sh, scripts/build-redis-image.sh, scripts/build-nginx-image.sh) to build it"
    )]
    MissingImage(String),
    #[error("docker {0}")]
    Other(String),
}

fn call(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let what = what.into();
    move |source| DockerError::Call { what, source }
}

/// Connects and negotiates the API version with the engine.
pub async fn connect() -> Result<Docker, DockerError> {
    let docker = Docker::connect_with_local_defaults()
        .map_err(|e| DockerError::Unreachable(e.to_string()))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| DockerError::Unreachable(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| DockerError::Unreachable(e.to_string()))?;
    Ok(docker)
}

pub async fn image_present(docker: &Docker, image: &str) -> bool {
    docker.inspect_image(image).await.is_ok()
}

/// A network the run made: its name, the host's address on it and its subnet.
#[derive(Debug, Clone)]
pub struct RunNetwork {
    pub name: String,
    pub id: String,
    pub gateway: IpAddr,
    pub subnet: String,
}

/// What a container starts with besides its image: environment and bind mounts
/// (`host-path:container-path[:ro]`).
#[derive(Debug, Default)]
pub struct ContainerSetup {
    pub env: Vec<String>,
    pub binds: Vec<String>,
}

/// The containers and networks of one run, removed together.
pub struct RunResources {
    docker: Docker,
    pub run_id: String,
    containers: Vec<String>,
    networks: Vec<String>,
    torn_down: bool,
}

impl RunResources {
    pub fn new(docker: Docker, run_id: &str) -> Self {
        Self {
            docker,
            run_id: run_id.to_owned(),
            containers: vec![],
            networks: vec![],
            torn_down: false,
        }
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.to_owned(), self.run_id.clone()),
            (LABEL_PID.to_owned(), std::process::id().to_string()),
        ])
    }

    /// Creates a bridge network for the run and reads back its gateway (the host's side).
    pub async fn create_network(&mut self, suffix: &str) -> Result<RunNetwork, DockerError> {
        let name = format!("sfu-harness-{}-{suffix}", self.run_id);
        let created = self
            .docker
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(self.labels()),
                ..Default::default()
            })
            .await
            .map_err(call(format!("network create {name}")))?;
        self.networks.push(name.clone());
        let inspect = self
            .docker
            .inspect_network(&name, None)
            .await
            .map_err(call(format!("network inspect {name}")))?;
        let cfg = inspect
            .ipam
            .and_then(|i| i.config)
            .and_then(|c| {
                c.into_iter().find(|c| {
                    c.gateway
                        .as_deref()
                        .is_some_and(|g| g.parse::<std::net::Ipv4Addr>().is_ok())
                })
            })
            .ok_or_else(|| DockerError::Other(format!("network {name} has no IPv4 gateway")))?;
        let gateway = cfg
            .gateway
            .unwrap_or_default()
            .parse()
            .map_err(|_| DockerError::Other(format!("network {name}: bad gateway")))?;
        Ok(RunNetwork {
            name,
            id: created.id,
            gateway,
            subnet: cfg.subnet.unwrap_or_default(),
        })
    }

    /// Creates and starts a container on `network` (and attached to `extra` networks
    /// too, before it starts, so it sees every interface from the first instant);
    /// returns its id and address on `network`.
    pub async fn start_container(
        &mut self,
        name_suffix: &str,
        image: &str,
        setup: ContainerSetup,
        network: &RunNetwork,
        extra: &[RunNetwork],
        role: &str,
    ) -> Result<(String, IpAddr), DockerError> {
        if !image_present(&self.docker, image).await {
            return Err(DockerError::MissingImage(image.to_owned()));
        }
        let name = format!("sfu-harness-{}-{name_suffix}", self.run_id);
        let mut labels = self.labels();
        labels.insert("sfu-harness.role".into(), role.into());
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            env: Some(setup.env),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(network.name.clone()),
                binds: (!setup.binds.is_empty()).then_some(setup.binds),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(call(format!("create {name}")))?;
        self.containers.push(created.id.clone());
        for net in extra {
            let req = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: None,
            };
            self.docker
                .connect_network(&net.name, req)
                .await
                .map_err(call(format!("network connect {} {name}", net.name)))?;
        }
        self.docker
            .start_container(&created.id, None)
            .await
            .map_err(call(format!("start {name}")))?;
        let ip = self.container_ip(&created.id, &network.name).await?;
        Ok((created.id, ip))
    }

    pub async fn container_ip(&self, id: &str, network: &str) -> Result<IpAddr, DockerError> {
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(call(format!("inspect {id}")))?;
        inspect
            .network_settings
            .and_then(|s| s.networks)
            .and_then(|n| n.get(network).and_then(|e| e.ip_address.clone()))
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| {
                DockerError::Other(format!("container {id} has no address on {network}"))
            })
    }

    /// The last `lines` of a container's log (for errors: why did the SFU not come up).
    pub async fn logs_tail(&self, id: &str, lines: usize) -> String {
        use futures_util::StreamExt;
        let opts = bollard::query_parameters::LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(opts));
        let mut out = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&chunk.to_string());
        }
        out
    }

    /// Removes everything the run made. Idempotent.
    pub async fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let rm = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        for id in self.containers.drain(..) {
            if let Err(e) = self.docker.remove_container(&id, Some(rm.clone())).await {
                problems.push(format!("container {id}: {e}"));
            }
        }
        for name in self.networks.drain(..) {
            if let Err(e) = self.docker.remove_network(&name).await {
                problems.push(format!("network {name}: {e}"));
            }
        }
        self.torn_down = true;
        problems
    }
}

impl Drop for RunResources {
    fn drop(&mut self) {
        if self.torn_down || (self.containers.is_empty() && self.networks.is_empty()) {
            return;
        }
        // No async runtime can be relied on here (this runs while unwinding): the CLI.
        let docker = |args: &[&str]| {
            let _ = std::process::Command::new("docker")
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        };
        for id in &self.containers {
            docker(&["rm", "-f", "-v", id]);
        }
        for name in &self.networks {
            docker(&["network", "rm", name]);
        }
    }
}

/// Removes containers and networks of runs whose harness process is gone (a SIGKILLed
/// run), and returns what it removed. Objects of live runs are left alone.
pub async fn sweep_dead_runs(docker: &Docker) -> Result<Vec<String>, DockerError> {
    let filter = HashMap::from([("label".to_owned(), vec![LABEL_RUN.to_owned()])]);
    let mut removed = Vec::new();
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(call("list containers"))?;
    let rm = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    for c in containers {
        let labels = c.labels.unwrap_or_default();
        if owner_alive(&labels) {
            continue;
        }
        if let Some(id) = c.id
            && docker.remove_container(&id, Some(rm.clone())).await.is_ok()
        {
            removed.push(format!(
                "container {}",
                c.names.and_then(|n| n.first().cloned()).unwrap_or(id)
            ));
        }
    }
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(call("list networks"))?;
    for n in networks {
        if owner_alive(&n.labels.unwrap_or_default()) {
            continue;
        }
        if let Some(name) = n.name
            && docker.remove_network(&name).await.is_ok()
        {
            removed.push(format!("network {name}"));
        }
    }
    Ok(removed)
}

/// Whether the harness process named by the object's pid label still runs. This
/// process counts as alive: runs in one process (tests run scenarios in parallel) clean
/// up after themselves, and must never remove each other's objects. A reused pid errs on
/// the side of leaving things alone.
fn owner_alive(labels: &HashMap<String, String>) -> bool {
    let Some(pid) = labels.get(LABEL_PID).and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    if pid == std::process::id() as i32 {
        return true;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Sends `signal` (`SIGKILL`: the `sfu-kill` fault, `SIGTERM`: `sfu-drain`) to a
/// container's main process.
pub async fn kill(docker: &Docker, id: &str, signal: &str) -> Result<(), DockerError> {
    let opts = bollard::query_parameters::KillContainerOptionsBuilder::new()
        .signal(signal)
        .build();
    docker
        .kill_container(id, Some(opts))
        .await
        .map_err(call(format!("kill -{signal} {id}")))
}

/// Whether a container's process is running (`None`: the engine could not say).
pub async fn is_running(docker: &Docker, id: &str) -> Option<bool> {
    let inspect = docker.inspect_container(id, None).await.ok()?;
    inspect.state?.running
}

/// Starts a stopped container again.
pub async fn start(docker: &Docker, id: &str) -> Result<(), DockerError> {
    docker
        .start_container(id, None)
        .await
        .map_err(call(format!("start {id}")))
}

/// Restarts a container with no grace period (SIGKILL, then start).
pub async fn restart(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let opts = bollard::query_parameters::RestartContainerOptionsBuilder::new()
        .t(0)
        .build();
    docker
        .restart_container(id, Some(opts))
        .await
        .map_err(call(format!("restart {id}")))
}
