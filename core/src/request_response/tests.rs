//! The protocol against a fake node: every way a request ends, every bound.

use alloc::vec;
use alloc::vec::Vec;

use super::held::RETRY_INTERVAL;
use super::*;
use crate::node::QueryError;
use crate::router::fake::FakeNode;

const CHANNEL: ChannelId = 20;
const T0: Instant = Instant::ZERO;

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes([n; 32])
}

fn config() -> RequestResponseConfig {
    RequestResponseConfig::new("ask", CHANNEL)
}

/// Decodes what the protocol sent, in order.
fn sent(node: &mut FakeNode) -> Vec<(PeerId, WireMessage)> {
    node.take_sent()
        .into_iter()
        .map(|(to, channel, message)| {
            assert_eq!(channel, CHANNEL);
            (to, WireMessage::decode(&message).expect("well-formed"))
        })
        .collect()
}

fn deliver(
    rr: &mut RequestResponse,
    node: &mut FakeNode,
    now: Instant,
    from: PeerId,
    m: WireMessage,
) {
    rr.message(&mut node.ctx(now), from, CHANNEL, m.encode());
}

/// `from` asks an empty question with `id`.
fn ask_empty(rr: &mut RequestResponse, node: &mut FakeNode, now: Instant, from: PeerId, id: u64) {
    let question = WireMessage::Request {
        id,
        body: Bytes::new(),
    };
    deliver(rr, node, now, from, question);
}

#[test]
fn a_request_is_answered_once_and_its_timer_cancelled() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::new(config());
    let id = rr
        .request(&mut node.ctx(T0), peer(1), Bytes::from_static(b"q"))
        .unwrap();
    assert_eq!(
        sent(&mut node),
        vec![(
            peer(1),
            WireMessage::Request {
                id: id.0,
                body: Bytes::from_static(b"q")
            }
        )]
    );
    assert_eq!(node.next_timer(), Some(T0 + Duration::from_secs(10)));
    let answer = WireMessage::Response {
        id: id.0,
        body: Bytes::from_static(b"a"),
    };
    deliver(&mut rr, &mut node, T0, peer(1), answer.clone());
    assert_eq!(
        node.take_emitted::<RequestEvent>(),
        vec![RequestEvent::Response {
            peer: peer(1),
            id,
            body: Bytes::from_static(b"a")
        }]
    );
    assert_eq!((rr.in_flight(), node.next_timer()), (0, None));
    // The same answer again, or one from another peer under that id: late, not an event.
    deliver(&mut rr, &mut node, T0, peer(1), answer);
    assert!(node.take_emitted::<RequestEvent>().is_empty());
    assert_eq!(rr.stats().late, 1);
}

#[test]
fn a_request_times_out_at_its_deadline_and_not_before() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::new(config());
    let first = rr
        .request(&mut node.ctx(T0), peer(1), Bytes::new())
        .unwrap();
    let later = T0 + Duration::from_secs(3);
    let second = rr
        .request(&mut node.ctx(later), peer(1), Bytes::new())
        .unwrap();
    let deadline = T0 + Duration::from_secs(10);
    assert_eq!(node.next_timer(), Some(deadline));
    rr.timer(&mut node.ctx(T0 + Duration::from_millis(9_999)), DEADLINE);
    assert!(node.take_emitted::<RequestEvent>().is_empty());
    rr.timer(&mut node.ctx(deadline), DEADLINE);
    assert_eq!(
        node.take_emitted::<RequestEvent>(),
        vec![RequestEvent::Failed {
            peer: peer(1),
            id: first,
            failure: RequestFailure::TimedOut
        }]
    );
    assert_eq!(node.next_timer(), Some(later + Duration::from_secs(10)));
    assert!(second > first);
    // Its answer after the timeout is dropped.
    deliver(
        &mut rr,
        &mut node,
        deadline,
        peer(1),
        WireMessage::Response {
            id: first.0,
            body: Bytes::new(),
        },
    );
    assert!(node.take_emitted::<RequestEvent>().is_empty());
    assert_eq!(rr.stats().late, 1);
}

#[test]
fn a_peer_leaving_fails_its_requests_and_forgets_its_questions() {
    let mut node = FakeNode::new(&[peer(1), peer(2)]);
    let mut rr = RequestResponse::new(config());
    let a = rr
        .request(&mut node.ctx(T0), peer(1), Bytes::new())
        .unwrap();
    let b = rr
        .request(&mut node.ctx(T0), peer(1), Bytes::new())
        .unwrap();
    let other = rr
        .request(&mut node.ctx(T0), peer(2), Bytes::new())
        .unwrap();
    ask_empty(&mut rr, &mut node, T0, peer(1), 5);
    node.take_emitted::<RequestEvent>();
    rr.peer_disconnected(&mut node.ctx(T0), peer(1), DisconnectReason::Timeout);
    let gone = RequestFailure::PeerGone(DisconnectReason::Timeout);
    assert_eq!(
        node.take_emitted::<RequestEvent>(),
        vec![
            RequestEvent::Failed {
                peer: peer(1),
                id: a,
                failure: gone.clone()
            },
            RequestEvent::Failed {
                peer: peer(1),
                id: b,
                failure: gone
            },
        ]
    );
    let question = InboundRequest {
        peer: peer(1),
        id: 5,
    };
    assert_eq!(
        rr.respond(&mut node.ctx(T0), question, Bytes::new()),
        Err(UnknownRequest(question))
    );
    assert_eq!(rr.in_flight(), 1, "{other:?} still awaits peer 2");
}

#[test]
fn requests_beyond_the_bounds_are_refused_and_nothing_is_left_pending() {
    let mut node = FakeNode::new(&[peer(1), peer(2)]);
    let mut rr = RequestResponse::new(RequestResponseConfig {
        max_in_flight_per_peer: 2,
        max_in_flight: 3,
        ..config()
    });
    let mut ask = |rr: &mut RequestResponse, to| rr.request(&mut node.ctx(T0), to, Bytes::new());
    assert!(ask(&mut rr, peer(1)).is_ok());
    assert!(ask(&mut rr, peer(1)).is_ok());
    assert!(matches!(
        ask(&mut rr, peer(1)),
        Err(RequestError::TooManyInFlight(_))
    ));
    assert!(ask(&mut rr, peer(2)).is_ok());
    assert!(matches!(
        ask(&mut rr, peer(2)),
        Err(RequestError::TooManyInFlight(_))
    ));
    assert!(matches!(
        ask(&mut rr, peer(9)),
        Err(RequestError::NotConnected(_))
    ));
    let too_large = Bytes::from(vec![0; 4 << 20]);
    let mut rr = RequestResponse::new(config());
    assert!(matches!(
        rr.request(&mut node.ctx(T0), peer(1), too_large),
        Err(RequestError::TooLarge(_))
    ));
    assert_eq!(rr.in_flight(), 0);
}

#[test]
fn the_application_answers_a_question_once() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::new(config());
    let body = Bytes::from_static(b"2+2");
    deliver(
        &mut rr,
        &mut node,
        T0,
        peer(1),
        WireMessage::Request {
            id: 41,
            body: body.clone(),
        },
    );
    let request = InboundRequest {
        peer: peer(1),
        id: 41,
    };
    assert_eq!(
        node.take_emitted::<RequestEvent>(),
        vec![RequestEvent::Request { request, body }]
    );
    rr.respond(&mut node.ctx(T0), request, Bytes::from_static(b"4"))
        .unwrap();
    assert_eq!(
        sent(&mut node),
        vec![(
            peer(1),
            WireMessage::Response {
                id: 41,
                body: Bytes::from_static(b"4")
            }
        )]
    );
    assert_eq!(
        rr.refuse(&mut node.ctx(T0), request),
        Err(UnknownRequest(request))
    );
}

#[test]
fn a_handler_answers_or_declines_on_the_spot() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::with_handler(config(), |_, question| {
        (!question.is_empty()).then(|| question.clone())
    });
    for (id, body) in [(1, &b"echo"[..]), (2, &b""[..])] {
        deliver(
            &mut rr,
            &mut node,
            T0,
            peer(1),
            WireMessage::Request {
                id,
                body: Bytes::copy_from_slice(body),
            },
        );
    }
    assert!(node.take_emitted::<RequestEvent>().is_empty());
    assert_eq!(
        sent(&mut node),
        vec![
            (
                peer(1),
                WireMessage::Response {
                    id: 1,
                    body: Bytes::from_static(b"echo")
                }
            ),
            (
                peer(1),
                WireMessage::Refused {
                    id: 2,
                    reason: RefuseReason::Declined
                }
            ),
        ]
    );
}

#[test]
fn a_refusal_ends_our_request() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::new(config());
    let id = rr
        .request(&mut node.ctx(T0), peer(1), Bytes::new())
        .unwrap();
    deliver(
        &mut rr,
        &mut node,
        T0,
        peer(1),
        WireMessage::Refused {
            id: id.0,
            reason: RefuseReason::Busy,
        },
    );
    assert_eq!(
        node.take_emitted::<RequestEvent>(),
        vec![RequestEvent::Failed {
            peer: peer(1),
            id,
            failure: RequestFailure::Refused(RefuseReason::Busy)
        }]
    );
    assert_eq!(rr.stats().failed, 1);
}

#[test]
fn questions_beyond_a_peers_share_are_refused_as_busy() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::new(RequestResponseConfig {
        max_inbound_per_peer: 2,
        ..config()
    });
    for id in 0..4 {
        deliver(
            &mut rr,
            &mut node,
            T0,
            peer(1),
            WireMessage::Request {
                id,
                body: Bytes::new(),
            },
        );
    }
    assert_eq!(node.take_emitted::<RequestEvent>().len(), 2);
    let refusals: Vec<u64> = sent(&mut node)
        .into_iter()
        .map(|(_, message)| match message {
            WireMessage::Refused {
                id,
                reason: RefuseReason::Busy,
            } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(refusals, vec![2, 3]);
    assert_eq!(rr.stats().refused_busy, 2);
    // Answering one makes room for one more.
    rr.respond(
        &mut node.ctx(T0),
        InboundRequest {
            peer: peer(1),
            id: 0,
        },
        Bytes::new(),
    )
    .unwrap();
    ask_empty(&mut rr, &mut node, T0, peer(1), 9);
    assert_eq!(node.take_emitted::<RequestEvent>().len(), 1);
}

#[test]
fn a_repeated_id_or_a_malformed_message_disconnects_the_peer() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::new(config());
    let question = WireMessage::Request {
        id: 3,
        body: Bytes::new(),
    };
    deliver(&mut rr, &mut node, T0, peer(1), question.clone());
    deliver(&mut rr, &mut node, T0, peer(1), question);
    rr.message(
        &mut node.ctx(T0),
        peer(1),
        CHANNEL,
        Bytes::from_static(b"\x09"),
    );
    assert_eq!(
        node.sends.disconnected,
        vec![
            (peer(1), DisconnectReason::ProtocolError),
            (peer(1), DisconnectReason::ProtocolError)
        ]
    );
}

#[test]
fn a_full_queue_holds_messages_in_order_until_writable() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::new(RequestResponseConfig {
        max_inbound_per_peer: 1,
        ..config()
    });
    ask_empty(&mut rr, &mut node, T0, peer(1), 7);
    assert_eq!(node.take_emitted::<RequestEvent>().len(), 1);
    node.sends.full = true;
    let asked = rr.request(&mut node.ctx(T0), peer(1), Bytes::from_static(b"q"));
    let asked = asked.expect("kept for later, not refused");
    rr.respond(
        &mut node.ctx(T0),
        InboundRequest {
            peer: peer(1),
            id: 7,
        },
        Bytes::new(),
    )
    .unwrap();
    // The answer still waits for room: it counts against the peer's share, so the next
    // question is refused (and the refusal, with no room, not kept).
    ask_empty(&mut rr, &mut node, T0, peer(1), 8);
    assert!(node.take_emitted::<RequestEvent>().is_empty());
    assert_eq!(rr.stats().refused_busy, 1);
    node.sends.full = false;
    rr.writable(&mut node.ctx(T0), peer(1), CHANNEL);
    assert_eq!(
        sent(&mut node),
        vec![
            (
                peer(1),
                WireMessage::Request {
                    id: asked.0,
                    body: Bytes::from_static(b"q")
                }
            ),
            (
                peer(1),
                WireMessage::Response {
                    id: 7,
                    body: Bytes::new()
                }
            ),
        ]
    );
}

#[test]
fn a_node_event_yields_its_request_event_and_the_request_it_ends() {
    let mut node = FakeNode::new(&[peer(1)]);
    let mut rr = RequestResponse::new(config());
    let id = rr
        .request(&mut node.ctx(T0), peer(1), Bytes::new())
        .unwrap();
    rr.peer_disconnected(&mut node.ctx(T0), peer(1), DisconnectReason::Quitting);
    let events = node.take_events();
    let event = crate::node::NodeEvent::Protocol(events[0].clone());
    let ended = RequestEvent::of(&event).expect("a request event");
    assert_eq!(ended.id(), Some(id));
    assert!(matches!(ended, RequestEvent::Failed { .. }));
    let other = crate::node::NodeEvent::Writable {
        peer: peer(1),
        channel: CHANNEL,
    };
    assert_eq!(RequestEvent::of(&other), None);
    let question = RequestEvent::Request {
        request: InboundRequest {
            peer: peer(1),
            id: 3,
        },
        body: Bytes::new(),
    };
    assert_eq!(question.id(), None);
}

fn addr_of(n: u8) -> NetAddress {
    let socket = core::net::SocketAddr::from(([10, 0, n, 1], 26656));
    NetAddress::new(Some(peer(n)), socket)
}

/// The fake node's query connection to `n` opened: the router adds the peer and calls the
/// hook.
fn query_connects(rr: &mut RequestResponse, node: &mut FakeNode, now: Instant, n: u8) {
    node.peers.push((peer(n), 1));
    node.peers.sort();
    node.sends.query_peers.insert(peer(n));
    rr.peer_connected(&mut node.ctx(now), peer(n), 1)
        .expect("admitted");
}

#[test]
fn a_request_to_a_stranger_opens_one_query_connection_and_waits_for_it() {
    let mut node = FakeNode::new(&[]);
    let mut rr = RequestResponse::new(config());
    let first = rr
        .request_to(&mut node.ctx(T0), addr_of(2), Bytes::from_static(b"q1"))
        .unwrap();
    let second = rr
        .request_to(&mut node.ctx(T0), addr_of(2), Bytes::from_static(b"q2"))
        .unwrap();
    assert_eq!(node.sends.queries_opened, vec![addr_of(2)], "opened once");
    assert!(sent(&mut node).is_empty(), "held until it connects");
    assert_eq!((rr.held(), rr.in_flight()), (2, 2));
    query_connects(&mut rr, &mut node, T0, 2);
    assert_eq!(
        sent(&mut node),
        vec![
            (
                peer(2),
                WireMessage::Request {
                    id: first.0,
                    body: Bytes::from_static(b"q1")
                }
            ),
            (
                peer(2),
                WireMessage::Request {
                    id: second.0,
                    body: Bytes::from_static(b"q2")
                }
            ),
        ],
        "in the order asked"
    );
    assert_eq!((rr.held(), rr.stats().requests_sent), (0, 2));
    // Connected now (over the query connection): the next one goes out at once.
    rr.request_to(&mut node.ctx(T0), addr_of(2), Bytes::from_static(b"q3"))
        .unwrap();
    assert_eq!(sent(&mut node).len(), 1);
    assert_eq!(node.sends.queries_opened.len(), 1);
    deliver(
        &mut rr,
        &mut node,
        T0,
        peer(2),
        WireMessage::Response {
            id: first.0,
            body: Bytes::from_static(b"a1"),
        },
    );
    assert_eq!(
        node.take_emitted::<RequestEvent>(),
        vec![RequestEvent::Response {
            peer: peer(2),
            id: first,
            body: Bytes::from_static(b"a1")
        }]
    );
}

#[test]
fn a_failed_query_dial_ends_each_held_request_once() {
    let mut node = FakeNode::new(&[]);
    let mut rr = RequestResponse::new(config());
    for body in [&b"q1"[..], b"q2"] {
        rr.request_to(&mut node.ctx(T0), addr_of(3), Bytes::from_static(body))
            .unwrap();
    }
    rr.query_failed(
        &mut node.ctx(T0),
        addr_of(3),
        DisconnectReason::TooManyPeers,
    );
    let ended = node.take_emitted::<RequestEvent>();
    assert_eq!(ended.len(), 2);
    assert!(ended.iter().all(|event| matches!(
        event,
        RequestEvent::Failed {
            failure: RequestFailure::Unreachable(DisconnectReason::TooManyPeers),
            ..
        }
    )));
    assert_eq!((rr.held(), rr.in_flight(), node.next_timer()), (0, 0, None));
    // Nothing left to end: the deadline passing, or the connection coming after all, says
    // nothing more.
    rr.timer(&mut node.ctx(T0 + Duration::from_secs(10)), DEADLINE);
    query_connects(&mut rr, &mut node, T0, 3);
    assert!(node.take_emitted::<RequestEvent>().is_empty());
    assert!(sent(&mut node).is_empty());
}

#[test]
fn with_the_query_budget_full_a_request_waits_for_a_slot_then_goes() {
    let mut node = FakeNode::new(&[]);
    let mut rr = RequestResponse::new(config());
    node.sends.query_refusal = Some(QueryError::BudgetFull);
    rr.request_to(&mut node.ctx(T0), addr_of(4), Bytes::from_static(b"q"))
        .unwrap();
    assert!(node.sends.queries_opened.is_empty());
    assert_eq!(rr.held(), 1);
    let retry = T0 + RETRY_INTERVAL;
    assert_eq!(node.timers.get(RETRY), Some(retry));
    // Still full at the first retry; a slot frees (another query peer leaves): opened.
    rr.timer(&mut node.ctx(retry), RETRY);
    assert!(node.sends.queries_opened.is_empty());
    node.sends.query_refusal = None;
    rr.peer_disconnected(&mut node.ctx(retry), peer(9), DisconnectReason::Requested);
    assert_eq!(node.sends.queries_opened, vec![addr_of(4)]);
    assert_eq!(node.timers.get(RETRY), None, "nothing waits for a slot");
    query_connects(&mut rr, &mut node, retry, 4);
    assert_eq!(sent(&mut node).len(), 1);
}

#[test]
fn a_query_another_protocol_is_opening_there_is_waited_for_not_counted_as_ours() {
    let mut node = FakeNode::new(&[]);
    let mut rr = RequestResponse::new(config());
    node.sends.query_refusal = Some(QueryError::Dialing);
    rr.request_to(&mut node.ctx(T0), addr_of(4), Bytes::from_static(b"q"))
        .unwrap();
    let retry = T0 + RETRY_INTERVAL;
    assert_eq!(node.timers.get(RETRY), Some(retry), "waits and tries again");
    // The other protocol's connection is gone; ours opens at the retry.
    node.sends.query_refusal = None;
    rr.timer(&mut node.ctx(retry), RETRY);
    assert_eq!(node.sends.queries_opened, vec![addr_of(4)]);
    query_connects(&mut rr, &mut node, retry, 4);
    assert_eq!(sent(&mut node).len(), 1);
}

#[test]
fn held_requests_keep_the_bounds_and_time_out() {
    let mut node = FakeNode::new(&[]);
    let mut rr = RequestResponse::new(RequestResponseConfig {
        max_in_flight_per_peer: 2,
        max_in_flight: 3,
        ..config()
    });
    for _ in 0..2 {
        rr.request_to(&mut node.ctx(T0), addr_of(5), Bytes::from_static(b"q"))
            .unwrap();
    }
    let over = rr.request_to(&mut node.ctx(T0), addr_of(5), Bytes::from_static(b"q"));
    assert!(matches!(over, Err(RequestError::TooManyInFlight(_))));
    rr.request_to(&mut node.ctx(T0), addr_of(6), Bytes::from_static(b"q"))
        .unwrap();
    let over = rr.request_to(&mut node.ctx(T0), addr_of(7), Bytes::from_static(b"q"));
    assert!(matches!(over, Err(RequestError::TooManyInFlight(_))));
    // The dials hang: every request times out at its deadline, once.
    let deadline = T0 + Duration::from_secs(10);
    assert_eq!(node.next_timer(), Some(deadline));
    rr.timer(&mut node.ctx(deadline), DEADLINE);
    let ended = node.take_emitted::<RequestEvent>();
    assert_eq!(ended.len(), 3);
    assert!(ended.iter().all(|event| matches!(
        event,
        RequestEvent::Failed {
            failure: RequestFailure::TimedOut,
            ..
        }
    )));
    assert_eq!((rr.held(), rr.in_flight()), (0, 0));
    query_connects(&mut rr, &mut node, deadline, 5);
    assert!(
        sent(&mut node).is_empty(),
        "a timed-out request is never sent"
    );
}

#[test]
fn a_request_to_that_cannot_open_a_query_connection_is_refused_at_once() {
    let mut node = FakeNode::new(&[]);
    let mut rr = RequestResponse::new(config());
    let anonymous = NetAddress::new(None, addr_of(2).socket_addr());
    let refused = rr.request_to(&mut node.ctx(T0), anonymous, Bytes::from_static(b"q"));
    assert!(matches!(refused, Err(RequestError::NoPeerId(_))));
    node.sends.query_refusal = Some(QueryError::Banned);
    let refused = rr.request_to(&mut node.ctx(T0), addr_of(2), Bytes::from_static(b"q"));
    assert!(matches!(
        refused,
        Err(RequestError::Query(QueryError::Banned, _))
    ));
    // A peer connected without this protocol: not reachable by it.
    node.sends.query_refusal = Some(QueryError::AlreadyConnected);
    let refused = rr.request_to(&mut node.ctx(T0), addr_of(2), Bytes::from_static(b"q"));
    assert!(matches!(refused, Err(RequestError::NotConnected(_))));
    assert_eq!((rr.held(), rr.in_flight(), node.next_timer()), (0, 0, None));
    assert!(node.take_emitted::<RequestEvent>().is_empty());
}
