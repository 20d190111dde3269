use proptest::prelude::*;

use super::*;

fn agent() -> AgentId {
    AgentId::new("a1").unwrap()
}

fn queue() -> QueueId {
    QueueId::new("q1").unwrap()
}

fn any_transition() -> impl Strategy<Value = ContactTransition> {
    prop_oneof![
        Just(ContactTransition::EnterIvr),
        Just(ContactTransition::Enqueue(queue())),
        Just(ContactTransition::Offer(agent())),
        Just(ContactTransition::Accept),
        Just(ContactTransition::Decline(DeclineReason::Rejected)),
        Just(ContactTransition::Decline(DeclineReason::NoAnswer)),
        Just(ContactTransition::RequestCallback),
        Just(ContactTransition::Overflow(OverflowTarget::Queue(queue()))),
        Just(ContactTransition::Overflow(OverflowTarget::Site(
            SiteId::new("s2").unwrap()
        ))),
        Just(ContactTransition::End),
        Just(ContactTransition::Finish),
        Just(ContactTransition::Abandon),
        Just(ContactTransition::Voicemail),
        Just(ContactTransition::Fail(FailReason::QueueFull)),
        Just(ContactTransition::Transfer(queue())),
    ]
}

#[test]
fn a_handled_contact_walks_the_happy_path_to_done() {
    let mut c = ContactLife::new();
    for (t, s) in [
        (ContactTransition::EnterIvr, ContactState::Ivr),
        (ContactTransition::Enqueue(queue()), ContactState::Queued),
        (ContactTransition::Offer(agent()), ContactState::Offered),
        (ContactTransition::Accept, ContactState::Connected),
        (ContactTransition::End, ContactState::WrapUp),
        (ContactTransition::Finish, ContactState::Done),
    ] {
        assert_eq!(c.apply(&t), Ok(s));
    }
    assert!(c.state().is_terminal());
}

#[test]
fn a_declined_offer_returns_the_contact_to_the_way_it_was_waiting() {
    let mut c = ContactLife::new();
    c.apply(&ContactTransition::Enqueue(queue())).unwrap();
    c.apply(&ContactTransition::Offer(agent())).unwrap();
    assert_eq!(
        c.apply(&ContactTransition::Decline(DeclineReason::NoAnswer)),
        Ok(ContactState::Queued)
    );
    c.apply(&ContactTransition::RequestCallback).unwrap();
    c.apply(&ContactTransition::Offer(agent())).unwrap();
    assert_eq!(
        c.apply(&ContactTransition::Decline(DeclineReason::Rejected)),
        Ok(ContactState::CallbackRequested)
    );
}

#[test]
fn answering_a_contact_that_was_abandoned_is_refused_and_changes_nothing() {
    let mut c = ContactLife::new();
    c.apply(&ContactTransition::Enqueue(queue())).unwrap();
    c.apply(&ContactTransition::Offer(agent())).unwrap();
    c.apply(&ContactTransition::Abandon).unwrap();
    let err = c.apply(&ContactTransition::Accept).unwrap_err();
    assert_eq!(err.from, ContactState::Abandoned);
    assert_eq!(
        err.to_string(),
        "a contact in state abandoned cannot accept"
    );
    assert_eq!(c.state(), ContactState::Abandoned);
}

#[test]
fn a_callback_cannot_be_abandoned_because_the_customer_already_left() {
    let mut c = ContactLife::new();
    c.apply(&ContactTransition::Enqueue(queue())).unwrap();
    c.apply(&ContactTransition::RequestCallback).unwrap();
    assert!(c.apply(&ContactTransition::Abandon).is_err());
    assert!(
        c.apply(&ContactTransition::Fail(FailReason::MaxWait))
            .is_ok()
    );
}

#[test]
fn a_transferred_contact_waits_again_and_is_no_longer_a_callback() {
    let mut c = ContactLife::new();
    c.apply(&ContactTransition::Enqueue(queue())).unwrap();
    c.apply(&ContactTransition::RequestCallback).unwrap();
    c.apply(&ContactTransition::Offer(agent())).unwrap();
    assert!(c.apply(&ContactTransition::Transfer(queue())).is_err());
    c.apply(&ContactTransition::Accept).unwrap();
    assert_eq!(
        c.apply(&ContactTransition::Transfer(queue())),
        Ok(ContactState::Queued)
    );
    assert!(!c.is_callback());
    // Only a conversation can be transferred: a waiting contact is moved instead.
    let err = c.apply(&ContactTransition::Transfer(queue())).unwrap_err();
    assert_eq!(err.to_string(), "a contact in state queued cannot transfer");
}

proptest! {
    /// Over random sequences: terminal states are absorbing, a refused transition changes
    /// nothing, and a contact is offered only from a waiting state.
    #[test]
    fn random_transition_sequences_keep_the_contact_invariants(
        ts in proptest::collection::vec(any_transition(), 0..40)
    ) {
        let mut c = ContactLife::new();
        let mut terminal_seen = 0;
        for t in &ts {
            let before = c;
            match c.apply(t) {
                Ok(next) => {
                    prop_assert!(!before.state().is_terminal(), "left terminal {:?}", before);
                    if matches!(t, ContactTransition::Offer(_)) {
                        prop_assert!(before.state().is_waiting());
                    }
                    if next.is_terminal() {
                        terminal_seen += 1;
                    }
                    prop_assert_eq!(c.state(), next);
                }
                Err(e) => {
                    prop_assert_eq!(c, before);
                    prop_assert_eq!(e.from, before.state());
                }
            }
        }
        prop_assert!(terminal_seen <= 1, "more than one terminal transition");
    }
}
