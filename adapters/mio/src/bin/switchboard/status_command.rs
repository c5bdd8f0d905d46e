//! `switchboard status`: a running node's `/status` and `/net_info`, read over plain HTTP
//! from its metrics address and printed as a table.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// How long each request may take: the node answers from memory, at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Digits of a peer id shown in the table: enough to tell peers apart.
const ID_PREFIX: usize = 12;

pub fn run(rpc: SocketAddr) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into();
    let get = |path: &str| -> Result<Value, String> {
        let url = format!("http://{rpc}{path}");
        let body = agent
            .get(&url)
            .call()
            .and_then(|mut response| response.body_mut().read_to_string())
            .map_err(|error| format!("{url}: {error}"))?;
        serde_json::from_str(&body).map_err(|error| format!("{url}: not JSON: {error}"))
    };
    print!("{}", render(&get("/status")?, &get("/net_info")?));
    Ok(())
}

/// The table: the node's id and addresses, then one row per peer.
fn render(status: &Value, net_info: &Value) -> String {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let listen: Vec<String> = status["listen_addrs"]
        .as_array()
        .map(|addrs| addrs.iter().map(text).collect())
        .unwrap_or_default();
    let mut out = format!(
        "node id           {}\nlisten addresses  {}\nexternal address  {}\npeers             {} inbound, {} outbound\n",
        text(&status["node_id"]),
        if listen.is_empty() {
            "-".to_string()
        } else {
            listen.join(", ")
        },
        text(&status["external_address"]),
        text(&status["peers"]["inbound"]),
        text(&status["peers"]["outbound"]),
    );
    let peers = net_info["peers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if peers.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "\n{:<12}  {:<8}  {:<22}  {:>9}  {:>10}  {:>12}  {:>12}\n",
        "peer", "dir", "address", "rtt", "connected", "sent", "received"
    ));
    for peer in peers {
        let mut id = text(&peer["id"]);
        id.truncate(ID_PREFIX);
        let rtt = peer["rtt_ms"]
            .as_f64()
            .map_or_else(|| "-".to_string(), |ms| format!("{ms:.1} ms"));
        let connected = peer["connected_s"]
            .as_f64()
            .map_or_else(|| "-".to_string(), |seconds| format!("{seconds:.0} s"));
        out.push_str(&format!(
            "{:<12}  {:<8}  {:<22}  {:>9}  {:>10}  {:>12}  {:>12}\n",
            id,
            text(&peer["direction"]),
            text(&peer["remote_addr"]),
            rtt,
            connected,
            text(&peer["bytes_sent"]),
            text(&peer["bytes_received"]),
        ));
    }
    out
}
