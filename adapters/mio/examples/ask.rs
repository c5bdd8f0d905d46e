//! Ask a peer a question and get its answer: request/response between two nodes on
//! 127.0.0.1, one answering with a handler, the other asking through its `Handle`.
//! `cargo run -p switchboard-mio --example ask`

use std::time::Duration;

use switchboard::Bytes;
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::request_response::{RequestEvent, RequestResponse, RequestResponseConfig};
use switchboard_mio::{DriverConfig, NodeApi, Runtime};

/// The protocol's channel.
const SQUARE: u16 = 20;

/// The answering side's handler: the square of a big-endian u64, or a refusal.
fn square(_asker: switchboard::PeerId, question: &Bytes) -> Option<Bytes> {
    let n = u64::from_be_bytes(question.as_ref().try_into().ok()?);
    Some(Bytes::copy_from_slice(&n.checked_mul(n)?.to_be_bytes()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wait = Duration::from_secs(10);
    let start = |answers: bool| -> Result<_, Box<dyn std::error::Error>> {
        // Registering the protocol offers it in the handshake: no channel in the config.
        let config = NodeConfig::new("ask-example", "ask/1.0");
        let driver = DriverConfig::with_new_key(config, vec!["127.0.0.1:0".parse()?])?;
        Ok(Runtime::default().start_with_router(driver, move |router| {
            let config = RequestResponseConfig::new("square", SQUARE);
            let protocol = match answers {
                true => RequestResponse::with_handler(config, square),
                false => RequestResponse::new(config),
            };
            router.register(protocol)
        })?)
    };
    let ((server, _), (client, protocol)) = (start(true)?, start(false)?);
    client.dial(server.net_address().ok_or("the server is not listening")?)?;
    let server_id = loop {
        if let NodeEvent::PeerConnected { peer, .. } = client.events().recv_timeout(wait)? {
            break peer;
        }
    };
    let question = Bytes::copy_from_slice(&12u64.to_be_bytes());
    let asked = client.with_protocol(protocol, move |rr, ctx| {
        rr.request(ctx, server_id, question)
    });
    let id = asked.ok_or("the client stopped")??;
    let answer = loop {
        let event = client.events().recv_timeout(wait)?;
        match RequestEvent::of(&event) {
            Some(RequestEvent::Response {
                id: answered, body, ..
            }) if *answered == id => {
                break u64::from_be_bytes(body.as_ref().try_into()?);
            }
            Some(RequestEvent::Failed {
                id: failed,
                failure,
                ..
            }) if *failed == id => {
                return Err(failure.to_string().into());
            }
            _ => {}
        }
    };
    println!("{server_id} says 12 × 12 = {answer}");
    assert_eq!(answer, 144);
    client.shutdown(wait);
    server.shutdown(wait);
    Ok(())
}
