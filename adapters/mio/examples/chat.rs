//! Alice and Bob, two nodes on 127.0.0.1, say hello: a whole chat through `Runtime`.
//! `cargo run -p switchboard-mio --example chat`

use std::time::Duration;

use switchboard::ChannelConfig;
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard_mio::{DriverConfig, NodeApi, Runtime};

const CHAT: u16 = 1;
const WAIT: Duration = Duration::from_secs(10);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = || -> Result<_, Box<dyn std::error::Error>> {
        let mut config = NodeConfig::new("chat-example", "chat/1.0");
        config.add_channel("chat", 1, ChannelConfig::new(CHAT));
        Ok(Runtime::spawn(DriverConfig::with_new_key(
            config,
            vec!["127.0.0.1:0".parse()?],
        )?)?)
    };
    let (alice, bob) = (start()?, start()?);
    bob.dial(alice.net_address().ok_or("alice is not listening")?)?;
    // Bob speaks once the handshake is done...
    let alice_id = loop {
        if let NodeEvent::PeerConnected { peer, .. } = bob.events().recv_timeout(WAIT)? {
            break peer;
        }
    };
    bob.send(&alice_id, CHAT, "hello, Alice".into())?;
    // ... and Alice hears him.
    loop {
        if let NodeEvent::Message { peer, message, .. } = alice.events().recv_timeout(WAIT)? {
            println!("{peer} says {:?}", String::from_utf8_lossy(&message));
            break;
        }
    }
    // Bob leaves once Alice's application has taken his line: nothing is lost.
    let report = bob.shutdown(WAIT);
    assert_eq!((report.confirmed(), report.returned()), (1, 0));
    Ok(())
}
