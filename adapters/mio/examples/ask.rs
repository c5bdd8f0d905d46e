//! Ask a peer a question and get its answer: request/response between nodes on 127.0.0.1,
//! the servers answering with a handler, the client asking through its `Handle` — first a
//! peer it dialed, then a stranger it never dialed, over a query connection that takes no
//! peer slot. `cargo run -p switchboard-mio --example ask`

use std::time::Duration;

use switchboard::node::{NodeConfig, NodeEvent};
use switchboard::request_response::{
    RequestError, RequestEvent, RequestId, RequestResponse, RequestResponseConfig,
};
use switchboard::router::{Context, ProtocolId, Router};
use switchboard::{Bytes, NetAddress};
use switchboard_mio::{ChaCha20Rng, DriverConfig, Handle, NodeApi, Runtime};

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
    let ((server, _), (stranger, _), (client, protocol)) =
        (start(true)?, start(true)?, start(false)?);
    client.dial(server.net_address().ok_or("the server is not listening")?)?;
    let server_id = loop {
        if let NodeEvent::PeerConnected { peer, .. } = client.events().recv_timeout(wait)? {
            break peer;
        }
    };
    // A peer: asked over the connection the client dialed.
    let answer = ask(&client, protocol, 12, move |rr, ctx, question| {
        rr.request(ctx, server_id, question)
    })?;
    println!("{server_id} says 12 × 12 = {answer}");
    assert_eq!(answer, 144);

    // A stranger: asked by its address alone. With no connection to it, the client opens a
    // query connection — outside its peer slots, closed once idle.
    let stranger_addr: NetAddress = stranger.net_address().ok_or("no stranger address")?;
    let answer = ask(&client, protocol, 7, move |rr, ctx, question| {
        rr.request_to(ctx, stranger_addr, question)
    })?;
    println!(
        "{} says 7 × 7 = {answer}, over a query connection",
        stranger.peer_id()
    );
    assert_eq!(answer, 49);
    assert_eq!(
        client.peers(),
        vec![server_id],
        "the stranger took no peer slot"
    );

    client.shutdown(wait);
    server.shutdown(wait);
    stranger.shutdown(wait);
    Ok(())
}

/// Asks `n` through `send` and waits for the answer to that request (other events skipped).
fn ask(
    client: &Handle<Router<ChaCha20Rng>>,
    protocol: ProtocolId<RequestResponse>,
    n: u64,
    send: impl FnOnce(&mut RequestResponse, &mut Context<'_>, Bytes) -> Result<RequestId, RequestError>
    + Send
    + 'static,
) -> Result<u64, Box<dyn std::error::Error>> {
    let question = Bytes::copy_from_slice(&n.to_be_bytes());
    let asked = client.with_protocol(protocol, move |rr, ctx| send(rr, ctx, question));
    let id = asked.ok_or("the client stopped")??;
    loop {
        let event = client.events().recv_timeout(Duration::from_secs(10))?;
        match RequestEvent::of(&event) {
            Some(RequestEvent::Response {
                id: answered, body, ..
            }) if *answered == id => {
                return Ok(u64::from_be_bytes(body.as_ref().try_into()?));
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
    }
}
