//! Request/response in the simulator: a client asks three servers 1,000 questions and gets
//! every answer, each the right one, within the in-flight bounds; then, with one server
//! black-holed and another crashed while questions are in flight, every request still ends
//! exactly once — answered, timed out, or failed with its peer gone — and none is left.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use switchboard::PeerId;
use switchboard::node::NodeEvent;
use switchboard::request_response::{
    RequestEvent, RequestFailure, RequestId, RequestResponse, RequestResponseConfig,
};
use switchboard::router::Router;
use switchboard_sim::{NodeIndex, PartitionMode, Sim, SimConfig, test_node_config};

const CHANNEL: u16 = 30;
const SERVERS: usize = 3;
const PER_PEER: usize = 4;

fn config() -> RequestResponseConfig {
    RequestResponseConfig {
        max_in_flight_per_peer: PER_PEER,
        ..RequestResponseConfig::new("ask", CHANNEL)
    }
}

/// The answer to `question`: its bytes reversed, so a mix-up of answers shows.
fn answer(question: &[u8]) -> Bytes {
    question.iter().rev().copied().collect::<Vec<u8>>().into()
}

/// A client (node 0) connected to `SERVERS` servers that answer with [`answer`].
fn network(seed: u64) -> (Sim, Vec<PeerId>) {
    let mut sim = Sim::new(SimConfig::with_seed(seed));
    let client = sim.add_node_with_router(test_node_config(), |router: &mut Router<_>| {
        router.register(RequestResponse::new(config())).map(drop)
    });
    let servers: Vec<NodeIndex> = (0..SERVERS)
        .map(|_| {
            sim.add_node_with_router(test_node_config(), |router: &mut Router<_>| {
                let server = RequestResponse::with_handler(config(), |_, q| Some(answer(q)));
                router.register(server).map(drop)
            })
        })
        .collect();
    for &server in &servers {
        let (now, address) = (sim.now(), sim.address(server));
        sim.node_mut(client).dial(now, address).expect("dial");
    }
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(client).peers().count(), SERVERS, "seed {seed}");
    let ids = servers.iter().map(|&s| sim.node(s).peer_id()).collect();
    (sim, ids)
}

/// How each request ended, from the client's event log: (answered, failed), each id once.
#[derive(Default)]
struct Outcomes {
    answered: BTreeMap<RequestId, Bytes>,
    failed: BTreeMap<RequestId, RequestFailure>,
}

impl Outcomes {
    fn read(sim: &Sim, questions: &BTreeMap<RequestId, Bytes>) -> Outcomes {
        let mut outcomes = Outcomes::default();
        for event in sim.log(0) {
            let NodeEvent::Protocol(event) = event else {
                continue;
            };
            let Some(event) = event.downcast_ref::<RequestEvent>() else {
                continue;
            };
            let first = match event {
                RequestEvent::Response { id, body, .. } => {
                    assert_eq!(body, &answer(&questions[id]), "answer to {id:?}");
                    outcomes.answered.insert(*id, body.clone()).is_none()
                        && !outcomes.failed.contains_key(id)
                }
                RequestEvent::Failed { id, failure, .. } => {
                    outcomes.failed.insert(*id, failure.clone()).is_none()
                        && !outcomes.answered.contains_key(id)
                }
                RequestEvent::Request { .. } => panic!("the client answers nothing"),
            };
            assert!(first, "{event:?} ended twice");
        }
        outcomes
    }
}

/// Asks round-robin until `total` questions are out, as the bounds allow; returns them.
fn ask(
    sim: &mut Sim,
    servers: &[PeerId],
    total: usize,
    questions: &mut BTreeMap<RequestId, Bytes>,
) {
    let mut next = questions.len();
    let stop = next + total;
    while next < stop {
        let server = servers[next % servers.len()];
        let question = Bytes::from(format!("question {next}"));
        let asked = sim
            .with_protocol(0, |rr: &mut RequestResponse, ctx| {
                assert!(rr.in_flight() <= PER_PEER * SERVERS);
                rr.request(ctx, server, question.clone())
            })
            .expect("the client runs");
        match asked {
            Ok(id) => {
                questions.insert(id, question);
                next += 1;
            }
            // At its bound: let answers come back.
            Err(_) => sim.run_for(Duration::from_millis(5)),
        }
    }
}

#[test]
fn a_thousand_questions_get_a_thousand_right_answers() {
    for seed in 1..=3 {
        let (mut sim, servers) = network(seed);
        let mut questions = BTreeMap::new();
        ask(&mut sim, &servers, 1_000, &mut questions);
        sim.run_for(Duration::from_secs(1));
        let outcomes = Outcomes::read(&sim, &questions);
        assert_eq!(outcomes.answered.len(), 1_000, "seed {seed}");
        assert!(outcomes.failed.is_empty(), "seed {seed}");
        let client = sim.protocol::<RequestResponse>(0).expect("the client");
        assert_eq!(client.in_flight(), 0);
        assert_eq!(client.stats().responses, 1_000);
    }
}

#[test]
fn with_servers_lost_every_request_still_ends_once() {
    let (mut sim, servers) = network(7);
    let mut questions = BTreeMap::new();
    ask(&mut sim, &servers, 30, &mut questions);
    // Server 1 black-holed (nothing crosses, nobody is told), server 3 crashed, with
    // questions in flight to both.
    sim.partition_pair(0, 1, PartitionMode::BlackHole);
    let _crashed = sim.crash(3).expect("crash");
    ask(&mut sim, &servers[1..2], 2, &mut questions);
    // Past the timeout (10 s) and keepalive's notice (20 s after a ping): all ended.
    sim.run_for(Duration::from_secs(40));
    let outcomes = Outcomes::read(&sim, &questions);
    assert_eq!(
        outcomes.answered.len() + outcomes.failed.len(),
        questions.len(),
        "every request ends"
    );
    let client = sim.protocol::<RequestResponse>(0).expect("the client");
    assert_eq!(client.in_flight(), 0);
    assert!(
        outcomes
            .failed
            .values()
            .any(|failure| *failure == RequestFailure::TimedOut),
        "the black-holed server's questions time out: {:?}",
        outcomes.failed
    );
    let server_2 = servers[1];
    let to_server_2 = 30 / SERVERS + 2; // every third of the first 30, and the 2 after
    let answered_by_2 = sim
        .log(0)
        .iter()
        .filter(|event| match event {
            NodeEvent::Protocol(event) => matches!(
                event.downcast_ref::<RequestEvent>(),
                Some(RequestEvent::Response { peer, .. }) if *peer == server_2
            ),
            _ => false,
        })
        .count();
    assert_eq!(answered_by_2, to_server_2, "the healthy server answers all");
}
