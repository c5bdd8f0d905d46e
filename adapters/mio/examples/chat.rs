//! Alice and Bob, two nodes on 127.0.0.1, say hello: a whole chat through `Runtime`.
//! `cargo run -p switchboard-mio --example chat`

use switchboard::ChannelConfig;
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard_mio::{DriverConfig, NodeApi, Runtime};

const CHAT: u16 = 1;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wait = std::time::Duration::from_secs(10);
    let start = || -> Result<_, Box<dyn std::error::Error>> {
        let mut config = NodeConfig::new("chat-example", "chat/1.0");
        config.add_channel("chat", 1, ChannelConfig::new(CHAT));
        let listen = vec!["127.0.0.1:0".parse()?];
        Ok(Runtime::spawn(DriverConfig::with_new_key(config, listen)?)?)
    };
    let (alice, bob) = (start()?, start()?);
    bob.dial(alice.net_address().ok_or("alice is not listening")?)?;
    let alice_id = loop {
        if let NodeEvent::PeerConnected { peer, .. } = bob.events().recv_timeout(wait)? {
            break peer;
        }
    };
    bob.send(&alice_id, CHAT, "hello, Alice".into())?;
    loop {
        if let NodeEvent::Message { peer, message, .. } = alice.events().recv_timeout(wait)? {
            println!("{peer} says {:?}", String::from_utf8_lossy(&message));
            break;
        }
    }
    let report = bob.shutdown(wait); // once Alice's application took the line
    assert_eq!((report.confirmed(), report.returned()), (1, 0));
    Ok(())
}
