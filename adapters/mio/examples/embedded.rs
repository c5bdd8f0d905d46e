//! A node inside your own `mio::Poll`: the embedded `Driver` sends 100 messages to an echo
//! node (a `Runtime` on its own thread), takes the 100 echoes, and shuts down with nothing
//! lost. `cargo run -p switchboard-mio --example embedded`

use std::thread;
use std::time::Duration;

use mio::{Events, Poll};
use switchboard::ChannelConfig;
use switchboard::node::{NodeConfig, NodeEvent};
use switchboard_mio::{Driver, DriverConfig, NodeApi, Runtime};

const ECHO: u16 = 1;
const MESSAGES: usize = 100;

fn config() -> NodeConfig {
    let mut config = NodeConfig::new("embedded-example", "embedded/1.0");
    config.add_channel("echo", 1, ChannelConfig::new(ECHO));
    config
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The echo node: answers every message with the same bytes until its peer leaves.
    let echo = Runtime::spawn(DriverConfig::with_new_key(
        config(),
        vec!["127.0.0.1:0".parse()?],
    )?)?;
    let echo_address = echo.net_address().ok_or("not listening")?;
    let echoing = thread::spawn(move || {
        while let Ok(event) = echo.events().recv() {
            match event {
                NodeEvent::Message { peer, message, .. } => {
                    let _ = echo.send_timeout(&peer, ECHO, message, Duration::from_secs(5));
                }
                NodeEvent::PeerDisconnected { .. } => break,
                _ => {}
            }
        }
        echo.shutdown(Duration::from_secs(1))
    });

    // Your loop: a poll of your own (your other sockets could share it), and the driver
    // under the tokens it was given. This one only dials.
    let mut poll = Poll::new()?;
    let mut driver = Driver::new(
        poll.registry(),
        DriverConfig::with_new_key(config(), vec![])?,
    )?;
    driver.dial(echo_address)?;
    let mut events = Events::with_capacity(256);
    let mut echoes = 0;
    loop {
        // 1. Sleep until a socket is ready or the node's next deadline.
        poll.poll(&mut events, driver.poll_timeout())?;
        // 2. Hand the driver its sockets' readiness.
        for event in events.iter() {
            if driver.owns(event.token()) {
                driver.handle_event(event);
            }
        }
        // 3. Take the events; everything else due is carried out on the way.
        while let Some(event) = driver.poll_event() {
            match event {
                NodeEvent::PeerConnected { peer, .. } => {
                    for number in 0..MESSAGES {
                        driver.send(&peer, ECHO, format!("message {number}").into())?;
                    }
                }
                NodeEvent::Message { .. } => {
                    echoes += 1;
                    if echoes == MESSAGES {
                        // Flush (confirmed by the peer) for at most 2 s, then GOAWAY.
                        driver.shutdown(Duration::from_secs(2));
                    }
                }
                _ => {}
            }
        }
        if echoes == MESSAGES && driver.is_idle() {
            break;
        }
    }
    let report = driver.take_shutdown_report().ok_or("not shut down")?;
    println!(
        "{echoes} echoes; at shutdown {} confirmed, {} handed back",
        report.confirmed(),
        report.returned()
    );
    assert_eq!(report.confirmed(), MESSAGES as u64);
    let echo_report = echoing.join().map_err(|_| "the echo thread panicked")?;
    assert!(echo_report.is_complete());
    Ok(())
}
