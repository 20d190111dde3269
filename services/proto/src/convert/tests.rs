//! Round trips over every event the domain can express, and one test per way the wire
//! form can be wrong.

use hotline_core::ids::{AgentId, QueueId, SiteId, TenantId};
use proptest::prelude::*;

use super::*;

// === strategies ===

/// Text that is a valid name id: what configuration accepts.
fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,64}"
}

fn tenant() -> impl Strategy<Value = TenantId> {
    name().prop_map(|s| TenantId::new(s).unwrap())
}

fn site() -> impl Strategy<Value = SiteId> {
    name().prop_map(|s| SiteId::new(s).unwrap())
}

fn queue() -> impl Strategy<Value = QueueId> {
    name().prop_map(|s| QueueId::new(s).unwrap())
}

fn agent() -> impl Strategy<Value = AgentId> {
    name().prop_map(|s| AgentId::new(s).unwrap())
}

fn contact() -> impl Strategy<Value = ContactId> {
    any::<u128>().prop_map(ContactId::from_u128)
}

fn channel() -> impl Strategy<Value = Channel> {
    prop::sample::select(Channel::ALL.to_vec())
}

fn decline_reason() -> impl Strategy<Value = DeclineReason> {
    prop::sample::select(vec![
        DeclineReason::Rejected,
        DeclineReason::NoAnswer,
        DeclineReason::Refused,
        DeclineReason::AgentFailed,
    ])
}

fn fail_reason() -> impl Strategy<Value = FailReason> {
    prop::sample::select(vec![
        FailReason::QueueFull,
        FailReason::MaxWait,
        FailReason::NoAgents,
        FailReason::Misrouted,
        FailReason::Internal,
    ])
}

fn overflow_target() -> impl Strategy<Value = OverflowTarget> {
    prop_oneof![
        queue().prop_map(OverflowTarget::Queue),
        site().prop_map(OverflowTarget::Site),
    ]
}

/// Every [`ContactEventKind`]; a new variant must be added here (the conversions'
/// exhaustive matches make sure the encoder and decoder are updated with it).
fn contact_event_kind() -> impl Strategy<Value = ContactEventKind> {
    use ContactEventKind as K;
    prop_oneof![
        proptest::option::of("[^\\x00]{1,20}").prop_map(|customer| K::Arrived {
            customer: customer.map(Into::into)
        }),
        Just(K::IvrEntered),
        any::<u8>().prop_map(|priority| K::Queued { priority }),
        any::<u8>().prop_map(|step| K::Expanded { step }),
        any::<u32>().prop_map(|attempt| K::Offered { attempt }),
        decline_reason().prop_map(|reason| K::OfferDeclined { reason }),
        any::<u64>().prop_map(|wait_ms| K::Connected { wait_ms }),
        any::<u64>().prop_map(|talk_ms| K::WrapUpStarted { talk_ms }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(talk_ms, hold_ms, wrap_ms)| {
            K::Done {
                talk_ms,
                hold_ms,
                wrap_ms,
            }
        }),
        (any::<u64>(), any::<bool>()).prop_map(|(wait_ms, while_offered)| K::Abandoned {
            wait_ms,
            while_offered
        }),
        Just(K::CallbackOffered),
        Just(K::CallbackRequested),
        (overflow_target(), any::<String>()).prop_map(|(to, reason)| K::Overflowed { to, reason }),
        overflow_target().prop_map(|to| K::Transferred { to }),
        any::<String>().prop_map(|reason| K::Voicemail { reason }),
        fail_reason().prop_map(|reason| K::Failed { reason }),
        (any::<String>(), any::<u32>(), any::<String>()).prop_map(|(flow, version, node)| {
            K::IvrNode {
                flow,
                version,
                node,
            }
        }),
        (
            proptest::option::of(site()),
            any::<String>(),
            overflow_outcome(),
            any::<String>()
        )
            .prop_map(|(to, reason, outcome, detail)| K::OverflowAttempt {
                to,
                reason,
                outcome,
                detail
            }),
        (any::<String>(), any::<String>())
            .prop_map(|(code, notes)| K::Dispositioned { code, notes }),
    ]
}

fn overflow_outcome() -> impl Strategy<Value = OverflowOutcome> {
    prop_oneof![
        Just(OverflowOutcome::NoSite),
        Just(OverflowOutcome::Refused),
        Just(OverflowOutcome::TimedOut),
        Just(OverflowOutcome::TransferFailed),
    ]
}

fn contact_event() -> impl Strategy<Value = ContactEvent> {
    (
        contact(),
        channel(),
        proptest::option::of(queue()),
        proptest::option::of(agent()),
        contact_event_kind(),
    )
        .prop_map(|(contact, channel, queue, agent, kind)| ContactEvent {
            contact,
            channel,
            queue,
            agent,
            kind,
        })
}

/// Every [`AgentEventKind`], as for contact events.
fn agent_event_kind() -> impl Strategy<Value = AgentEventKind> {
    use AgentEventKind as K;
    prop_oneof![
        Just(K::LoggedIn),
        Just(K::Ready),
        any::<String>().prop_map(|reason| K::NotReady { reason }),
        Just(K::LoggedOut),
        contact().prop_map(|contact| K::Reserved { contact }),
        contact().prop_map(|contact| K::OfferRejected { contact }),
        contact().prop_map(|contact| K::OfferRescinded { contact }),
        (contact(), any::<u32>()).prop_map(|(contact, in_row)| K::OfferMissed { contact, in_row }),
        contact().prop_map(|contact| K::ContactStarted { contact }),
        contact().prop_map(|contact| K::WrapUpStarted { contact }),
        (contact(), any::<u32>()).prop_map(|(contact, secs)| K::WrapUpExtended { contact, secs }),
        contact().prop_map(|contact| K::WrapUpEnded { contact }),
        Just(K::Recovered),
    ]
}

/// Every [`AgentStatus`], the not-ready reason included (an empty one too).
fn agent_status() -> impl Strategy<Value = AgentStatus> {
    prop_oneof![
        Just(AgentStatus::LoggedOut),
        Just(AgentStatus::Ready),
        Just(AgentStatus::Reserved),
        Just(AgentStatus::OnContact),
        Just(AgentStatus::WrapUp),
        any::<String>().prop_map(AgentStatus::NotReady),
    ]
}

fn agent_event() -> impl Strategy<Value = AgentEvent> {
    (agent(), agent_event_kind(), agent_status()).prop_map(|(agent, kind, status)| AgentEvent {
        agent,
        kind,
        status,
    })
}

fn event() -> impl Strategy<Value = Event> {
    let body = prop_oneof![
        contact_event().prop_map(EventBody::Contact),
        agent_event().prop_map(EventBody::Agent),
    ];
    (
        any::<u128>(),
        any::<u64>(),
        tenant(),
        site(),
        any::<u128>(),
        body,
    )
        .prop_map(|(id, at, tenant, site, trace, body)| Event {
            id: EventId::from_u128(id),
            at: Timestamp(at),
            tenant,
            site,
            trace: TraceId::from_u128(trace),
            body,
        })
}

#[test]
fn the_event_strategy_reaches_every_variant() {
    use std::collections::HashSet;
    use std::mem::discriminant;

    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = event();
    let (mut contact_kinds, mut agent_kinds, mut statuses) =
        (HashSet::new(), HashSet::new(), HashSet::new());
    for _ in 0..5_000 {
        match strategy.new_tree(&mut runner).unwrap().current().body {
            EventBody::Contact(c) => {
                contact_kinds.insert(discriminant(&c.kind));
            }
            EventBody::Agent(a) => {
                agent_kinds.insert(discriminant(&a.kind));
                statuses.insert(discriminant(&a.status));
            }
        }
    }
    // As many as the core enums have variants; update with them.
    assert_eq!(contact_kinds.len(), 19, "contact event kinds reached");
    assert_eq!(agent_kinds.len(), 13, "agent event kinds reached");
    assert_eq!(statuses.len(), 6, "agent statuses reached");
}

// === helpers ===

/// A small valid contact event, for tests that break one field of it.
fn sample_event() -> Event {
    Event {
        id: EventId::from_u128(1),
        at: Timestamp(1_700_000_000_000_000),
        tenant: TenantId::new("acme").unwrap(),
        site: SiteId::new("fra").unwrap(),
        trace: TraceId::from_u128(2),
        body: EventBody::Contact(ContactEvent {
            contact: ContactId::from_u128(3),
            channel: Channel::Voice,
            queue: Some(QueueId::new("billing").unwrap()),
            agent: None,
            kind: ContactEventKind::Queued { priority: 5 },
        }),
    }
}

/// The wire form of [`sample_event`], for tests to break.
fn sample_wire() -> pb::Event {
    pb::Event::from(&sample_event())
}

/// The contact part of a wire event, to break.
fn contact_part(e: &mut pb::Event) -> &mut pb::ContactEvent {
    match e.body.as_mut() {
        Some(pb::event::Body::Contact(c)) => c,
        other => panic!("expected a contact event, got {other:?}"),
    }
}

fn decode_wire(e: pb::Event) -> Result<Event, DecodeError> {
    decode_event(&e.encode_to_vec())
}

// === round trips ===

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn every_event_survives_encoding_and_decoding(e in event()) {
        let bytes = encode_event(&e);
        prop_assert_eq!(decode_event(&bytes), Ok(e));
    }

    #[test]
    fn every_event_survives_the_wire_message_without_bytes(e in event()) {
        prop_assert_eq!(Event::try_from(pb::Event::from(&e)), Ok(e));
    }
}

#[test]
fn ids_travel_as_the_uuids_own_sixteen_bytes() {
    let e = sample_event();
    let wire = pb::Event::from(&e);
    assert_eq!(wire.schema_version, SCHEMA_VERSION);
    assert_eq!(wire.id, e.id.0.as_bytes().to_vec());
    assert_eq!(wire.trace, e.trace.0.as_bytes().to_vec());
}

#[test]
fn a_contact_outside_any_queue_is_sent_without_a_queue_field() {
    let mut e = sample_event();
    let EventBody::Contact(c) = &mut e.body else {
        unreachable!()
    };
    c.queue = None;
    c.kind = ContactEventKind::Arrived { customer: None };
    let mut wire = pb::Event::from(&e);
    assert_eq!(contact_part(&mut wire).queue, None);
    assert_eq!(decode_wire(wire), Ok(e));
}

// === refusals ===

#[test]
fn bytes_that_are_not_an_event_are_refused_as_malformed() {
    // Field 1 as a varint whose continuation bit promises a byte that never comes.
    let err = decode_event(&[0x08, 0xff]).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)), "{err:?}");
    assert!(err.to_string().starts_with("undecodable event"), "{err}");
}

#[test]
fn an_event_without_a_body_is_refused_naming_the_body() {
    let mut wire = sample_wire();
    wire.body = None;
    let err = decode_wire(wire).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Missing {
            field: "Event.body"
        }
    );
    assert_eq!(err.to_string(), "Event.body is missing");
}

#[test]
fn a_contact_event_without_a_kind_is_refused_naming_the_kind() {
    let mut wire = sample_wire();
    contact_part(&mut wire).kind = None;
    assert_eq!(
        decode_wire(wire),
        Err(DecodeError::Missing {
            field: "ContactEvent.kind"
        })
    );
}

#[test]
fn an_unknown_channel_value_is_refused_with_the_field_and_value() {
    let mut wire = sample_wire();
    contact_part(&mut wire).channel = 42;
    let err = decode_wire(wire).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownEnum {
            field: "ContactEvent.channel",
            value: 42
        }
    );
    assert_eq!(err.to_string(), "ContactEvent.channel has unknown value 42");
}

#[test]
fn an_unknown_fail_reason_is_refused_with_the_field_and_value() {
    let mut wire = sample_wire();
    contact_part(&mut wire).kind = Some(pc::Kind::Failed(pc::Failed { reason: 99 }));
    assert_eq!(
        decode_wire(wire),
        Err(DecodeError::UnknownEnum {
            field: "ContactEvent.Failed.reason",
            value: 99
        })
    );
}

#[test]
fn an_unspecified_decline_reason_is_refused_as_missing() {
    let mut wire = sample_wire();
    contact_part(&mut wire).kind = Some(pc::Kind::OfferDeclined(pc::OfferDeclined {
        reason: pb::DeclineReason::Unspecified.into(),
    }));
    assert_eq!(
        decode_wire(wire),
        Err(DecodeError::Missing {
            field: "ContactEvent.OfferDeclined.reason"
        })
    );
}

#[test]
fn an_unknown_agent_state_is_refused_with_the_value() {
    let mut wire = pb::Event::from(&Event {
        body: EventBody::Agent(AgentEvent {
            agent: AgentId::new("ann").unwrap(),
            kind: AgentEventKind::Ready,
            status: AgentStatus::Ready,
        }),
        ..sample_event()
    });
    let Some(pb::event::Body::Agent(a)) = wire.body.as_mut() else {
        unreachable!()
    };
    a.status = Some(pb::AgentStatus {
        state: 7,
        not_ready_reason: String::new(),
    });
    assert_eq!(
        decode_wire(wire),
        Err(DecodeError::UnknownEnum {
            field: "AgentStatus.state",
            value: 7
        })
    );
}

#[test]
fn an_unknown_schema_version_is_refused_before_any_field_is_read() {
    let mut wire = sample_wire();
    wire.schema_version = SCHEMA_VERSION + 1;
    // Broken as well, to show the version is what gets reported.
    wire.body = None;
    let err = decode_wire(wire).unwrap_err();
    assert_eq!(err, DecodeError::UnknownVersion(SCHEMA_VERSION + 1));
    assert!(err.to_string().contains("schema_version 2"), "{err}");
}

#[test]
fn an_event_without_a_schema_version_is_refused_as_version_zero() {
    let mut wire = sample_wire();
    wire.schema_version = 0;
    assert_eq!(decode_wire(wire), Err(DecodeError::UnknownVersion(0)));
}

#[test]
fn a_contact_id_of_the_wrong_length_is_refused_with_its_length() {
    let mut wire = sample_wire();
    contact_part(&mut wire).contact = vec![0; 15];
    let err = decode_wire(wire).unwrap_err();
    assert_eq!(
        err,
        DecodeError::IdLength {
            field: "ContactEvent.contact",
            len: 15
        }
    );
    assert_eq!(
        err.to_string(),
        "ContactEvent.contact must be 16 bytes, got 15"
    );
}

#[test]
fn an_event_id_left_empty_is_refused_as_the_wrong_length() {
    let mut wire = sample_wire();
    wire.id.clear();
    assert_eq!(
        decode_wire(wire),
        Err(DecodeError::IdLength {
            field: "Event.id",
            len: 0
        })
    );
}

#[test]
fn a_tenant_that_is_not_a_valid_name_is_refused_with_the_text() {
    let mut wire = sample_wire();
    wire.tenant = "acme corp".into();
    let err = decode_wire(wire).unwrap_err();
    assert!(
        matches!(
            &err,
            DecodeError::InvalidId { field: "Event.tenant", kind: "tenant", value, .. }
                if value == "acme corp"
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"acme corp\""), "{err}");
}

#[test]
fn an_overflow_to_a_queue_with_an_empty_name_is_refused() {
    let mut wire = sample_wire();
    contact_part(&mut wire).kind = Some(pc::Kind::Overflowed(pc::Overflowed {
        to: Some(pb::OverflowTarget {
            target: Some(pb::overflow_target::Target::Queue(String::new())),
        }),
        reason: "max_wait".into(),
    }));
    let err = decode_wire(wire).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::InvalidId {
                field: "OverflowTarget.queue",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_priority_wider_than_a_byte_is_refused_with_the_value() {
    let mut wire = sample_wire();
    contact_part(&mut wire).kind = Some(pc::Kind::Queued(pc::Queued { priority: 256 }));
    let err = decode_wire(wire).unwrap_err();
    assert_eq!(
        err,
        DecodeError::OutOfRange {
            field: "ContactEvent.Queued.priority",
            value: 256,
            max: 255
        }
    );
}

// === the generated service ===

#[test]
fn the_acd_service_is_named_by_its_package() {
    assert_eq!(
        crate::acd::v1::acd_server::SERVICE_NAME,
        "hotline.acd.v1.Acd"
    );
}
