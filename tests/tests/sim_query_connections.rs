//! Query connections in the simulator (issue 22): a node whose outbound slots are full gets
//! 1,000 right answers from nodes it is not peered with, over query connections, its query
//! budget never exceeded and no peer slot taken anywhere (the checker's invariants, which
//! are shown to fire); and an attacker opening query connections as fast as it can, from
//! many identities, neither takes an inbound peer slot nor exceeds the listener's query
//! budget, while an honest node still gets a peer slot there.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use switchboard::node::NodeEvent;
use switchboard::request_response::{
    RequestError, RequestEvent, RequestId, RequestResponse, RequestResponseConfig,
};
use switchboard::router::Router;
use switchboard::{DisconnectReason, NetAddress};
use switchboard_sim::{CheckerFault, NodeIndex, Sim, SimConfig, ViolationKind, test_node_config};

const CHANNEL: u16 = 30;
const NODES: usize = 40;
const CLIENT_SLOTS: usize = 3;
const QUESTIONS: usize = 1_000;
/// Consecutive questions to one node, before the client moves to the next.
const RUN: usize = 7;

fn config() -> RequestResponseConfig {
    RequestResponseConfig::new("ask", CHANNEL)
}

/// The answer to `question`: its bytes reversed, so a mix-up of answers shows.
fn answer(question: &[u8]) -> Bytes {
    question.iter().rev().copied().collect::<Vec<u8>>().into()
}

fn server(sim: &mut Sim, node: switchboard::node::NodeConfig) -> NodeIndex {
    sim.add_node_with_router(node, |router: &mut Router<_>| {
        let server = RequestResponse::with_handler(config(), |_, q| Some(answer(q)));
        router.register(server).map(drop)
    })
}

/// `NODES` nodes answering questions; node 0, the client, has `CLIENT_SLOTS` outbound slots,
/// all taken by nodes 1..=3, and closes its query connections after 1 s idle.
fn network(config: SimConfig) -> Sim {
    let mut sim = Sim::new(config);
    let mut client = test_node_config();
    client.limits.max_outbound = CLIENT_SLOTS;
    client.limits.query_idle_timeout = Duration::from_secs(1);
    let client = server(&mut sim, client);
    let others: Vec<NodeIndex> = (1..NODES)
        .map(|_| server(&mut sim, test_node_config()))
        .collect();
    for &peer in &others[..CLIENT_SLOTS] {
        let (now, address) = (sim.now(), sim.address(peer));
        sim.node_mut(client).dial(now, address).expect("dial");
    }
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(client).peer_counts(), (0, CLIENT_SLOTS));
    let (now, one_more) = (sim.now(), sim.address(CLIENT_SLOTS + 1));
    sim.node_mut(client).dial(now, one_more).expect("queued");
    sim.run_for(Duration::from_millis(100));
    assert!(
        sim.log(client).iter().any(|event| matches!(
            event,
            NodeEvent::DialFailed {
                reason: DisconnectReason::TooManyPeers,
                ..
            }
        )),
        "the client's outbound slots are full"
    );
    sim
}

/// Asks the nodes the client is not peered with, `RUN` questions each in turn, as the
/// bounds allow, checking after every step that no peer slot moved; returns the questions.
fn ask(sim: &mut Sim, total: usize) -> BTreeMap<RequestId, Bytes> {
    let strangers: Vec<NetAddress> = (CLIENT_SLOTS + 1..NODES)
        .map(|index| sim.address(index))
        .collect();
    let slots: Vec<(usize, usize)> = (0..NODES).map(|i| sim.node(i).peer_counts()).collect();
    let mut questions = BTreeMap::new();
    while questions.len() < total {
        let next = questions.len();
        let to = strangers[(next / RUN) % strangers.len()];
        let question = Bytes::from(format!("question {next}"));
        let asked = sim
            .with_protocol(0, |rr: &mut RequestResponse, ctx| {
                rr.request_to(ctx, to, question.clone())
            })
            .expect("the client runs");
        match asked {
            Ok(id) => {
                questions.insert(id, question);
            }
            Err(RequestError::TooManyInFlight(_)) => sim.run_for(Duration::from_millis(5)),
            Err(error) => panic!("{error}"),
        }
        let budget = sim.node_config(0).limits.max_outbound_queries;
        assert!(sim.node(0).query_counts().1 <= budget);
    }
    sim.run_for(Duration::from_secs(3));
    let now: Vec<(usize, usize)> = (0..NODES).map(|i| sim.node(i).peer_counts()).collect();
    assert_eq!(now, slots, "no peer slot taken or given back by queries");
    questions
}

#[test]
fn a_node_with_full_outbound_slots_gets_a_thousand_answers_over_query_connections() {
    for seed in 1..=2 {
        let mut sim = network(SimConfig::with_seed(seed));
        let questions = ask(&mut sim, QUESTIONS);
        let mut answered = BTreeMap::new();
        let mut queries = 0;
        for event in sim.log(0) {
            match event {
                NodeEvent::QueryConnected { .. } => queries += 1,
                NodeEvent::QueryFailed { .. } => panic!("seed {seed}: {event:?}"),
                _ => {}
            }
            match RequestEvent::of(event) {
                Some(RequestEvent::Response { id, body, peer }) => {
                    assert_eq!(
                        body,
                        &answer(&questions[id]),
                        "seed {seed}: answer to {id:?}"
                    );
                    let index = sim.index_of(peer).expect("a node");
                    assert!(index > CLIENT_SLOTS, "answered by a stranger");
                    assert!(answered.insert(*id, ()).is_none(), "{id:?} ended twice");
                }
                Some(RequestEvent::Failed { .. }) => panic!("seed {seed}: {event:?}"),
                _ => {}
            }
        }
        assert_eq!(answered.len(), QUESTIONS, "seed {seed}");
        let client = sim.protocol::<RequestResponse>(0).expect("the client");
        assert_eq!((client.in_flight(), client.held()), (0, 0));
        assert_eq!(client.stats().responses, QUESTIONS as u64);
        // Reused while open: far fewer connections than questions (and more than the
        // budget, since idle ones closed to make room for the next nodes).
        let budget = sim.node_config(0).limits.max_outbound_queries;
        assert!(
            queries > budget && queries < QUESTIONS / RUN * 2,
            "seed {seed}: {queries} query connections"
        );
        // All idle by now: every one closed, its budget given back.
        sim.run_for(Duration::from_secs(2));
        assert_eq!(sim.node(0).query_counts(), (0, 0));
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        eprintln!("seed {seed}: {queries} query connections for {QUESTIONS} answers");
    }
}

#[test]
fn the_checker_catches_a_query_budget_exceeded_and_a_slot_taken() {
    for (fault, kind) in [
        (CheckerFault::ExceedQueryBudget, ViolationKind::QueryBudget),
        (CheckerFault::QueryTakesSlot, ViolationKind::QuerySlot),
    ] {
        let mut sim = network(SimConfig {
            inject: Some(fault),
            ..SimConfig::with_seed(3)
        });
        ask(&mut sim, 20);
        let kinds: Vec<ViolationKind> = sim.violations().iter().map(|v| v.kind).collect();
        assert_eq!(kinds, [kind], "{fault:?}");
    }
}

#[test]
fn an_attacker_looping_query_connections_takes_no_peer_slot_and_stays_within_budget() {
    const ATTACKERS: usize = 24;
    const BUDGET: usize = 4;
    let mut sim = Sim::new(SimConfig::with_seed(11));
    let mut target = test_node_config();
    target.limits.max_inbound = 2;
    target.limits.max_inbound_queries = BUDGET;
    let target = server(&mut sim, target);
    let attackers: Vec<NodeIndex> = (0..ATTACKERS)
        .map(|_| server(&mut sim, test_node_config()))
        .collect();
    let honest = server(&mut sim, test_node_config());
    let address = sim.address(target);
    let target_id = sim.node(target).peer_id();
    let mut most = 0;
    // 10 s of attack, every attacker reopening its query connection every 10 ms: closing
    // it as soon as it is open, or trying again when refused.
    for tick in 0..1_000 {
        let now = sim.now();
        for &attacker in &attackers {
            let node = sim.node_mut(attacker);
            if node.is_query_peer(&target_id) {
                node.disconnect(now, &target_id, DisconnectReason::Requested);
            }
            let _ = node.open_query(now, address, "ask");
        }
        if tick == 500 {
            sim.node_mut(honest).dial(now, address).expect("dial");
        }
        sim.run_for(Duration::from_millis(10));
        let node = sim.node(target);
        most = most.max(node.query_counts().0);
        assert!(node.query_counts().0 <= BUDGET, "tick {tick}");
        assert_eq!(node.peer_counts().1, 0);
        assert!(node.peer_counts().0 <= usize::from(tick >= 500));
    }
    let node = sim.node(target);
    assert_eq!(most, BUDGET, "the attack filled the budget");
    assert_eq!(
        node.peer_counts(),
        (1, 0),
        "the honest node has a peer slot"
    );
    assert_eq!(
        node.peers().collect::<Vec<_>>(),
        [sim.node(honest).peer_id()]
    );
    let (opened, refused) = attackers.iter().fold((0, 0), |(opened, refused), &a| {
        sim.log(a)
            .iter()
            .fold((opened, refused), |(o, r), event| match event {
                NodeEvent::QueryConnected { .. } => (o + 1, r),
                NodeEvent::QueryFailed {
                    reason: DisconnectReason::TooManyPeers,
                    ..
                } => (o, r + 1),
                _ => (o, r),
            })
    });
    assert!(
        opened > 100 && refused > 100,
        "{opened} opened, {refused} refused"
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    eprintln!("attack: {opened} query connections admitted, {refused} refused, budget {BUDGET}");
}
