use proptest::prelude::*;

use super::*;

fn c(n: u128) -> ContactId {
    ContactId::from_u128(n)
}

fn chat_agent() -> AgentMachine {
    AgentMachine::new(
        Capacity {
            voice: 1,
            chat: 3,
            callback: 1,
        },
        3,
    )
}

#[test]
fn a_logged_in_agent_starts_not_ready_and_takes_offers_only_when_ready() {
    let mut a = chat_agent();
    a.apply(&AgentTransition::LogIn).unwrap();
    assert_eq!(a.status(), AgentStatus::NotReady("logged_in".into()));
    let err = a
        .apply(&AgentTransition::Offer(c(1), Channel::Voice))
        .unwrap_err();
    assert_eq!(err.to_string(), "an agent who is not_ready cannot offer");
    a.apply(&AgentTransition::GoReady).unwrap();
    a.apply(&AgentTransition::Offer(c(1), Channel::Voice))
        .unwrap();
    assert_eq!(a.status(), AgentStatus::Reserved);
}

#[test]
fn an_agent_with_three_chats_refuses_a_fourth() {
    let mut a = chat_agent();
    a.apply(&AgentTransition::LogIn).unwrap();
    a.apply(&AgentTransition::GoReady).unwrap();
    for n in 1..=3 {
        a.apply(&AgentTransition::Offer(c(n), Channel::Chat))
            .unwrap();
        a.apply(&AgentTransition::Accept(c(n))).unwrap();
    }
    let err = a
        .apply(&AgentTransition::Offer(c(4), Channel::Chat))
        .unwrap_err();
    assert_eq!(
        err,
        IllegalAgentTransition::NoCapacity {
            channel: Channel::Chat,
            capacity: 3
        }
    );
    assert!(a.can_take(Channel::Voice));
}

#[test]
fn three_missed_offers_in_a_row_send_the_agent_not_ready_by_itself() {
    let mut a = chat_agent();
    a.apply(&AgentTransition::LogIn).unwrap();
    a.apply(&AgentTransition::GoReady).unwrap();
    for n in 1..=2 {
        a.apply(&AgentTransition::Offer(c(n), Channel::Voice))
            .unwrap();
        let out = a.apply(&AgentTransition::NoAnswer(c(n))).unwrap();
        assert!(!out.auto_not_ready);
    }
    a.apply(&AgentTransition::Offer(c(3), Channel::Voice))
        .unwrap();
    let out = a.apply(&AgentTransition::NoAnswer(c(3))).unwrap();
    assert!(out.auto_not_ready);
    assert_eq!(a.status(), AgentStatus::NotReady("missed".into()));
}

#[test]
fn an_answered_offer_resets_the_missed_count() {
    let mut a = chat_agent();
    a.apply(&AgentTransition::LogIn).unwrap();
    a.apply(&AgentTransition::GoReady).unwrap();
    for n in 1..=2 {
        a.apply(&AgentTransition::Offer(c(n), Channel::Voice))
            .unwrap();
        a.apply(&AgentTransition::NoAnswer(c(n))).unwrap();
    }
    a.apply(&AgentTransition::Offer(c(9), Channel::Voice))
        .unwrap();
    a.apply(&AgentTransition::Accept(c(9))).unwrap();
    assert_eq!(a.missed_in_row(), 0);
}

#[test]
fn going_not_ready_during_a_contact_shows_on_contact_until_wrap_up_ends() {
    let mut a = chat_agent();
    a.apply(&AgentTransition::LogIn).unwrap();
    a.apply(&AgentTransition::GoReady).unwrap();
    a.apply(&AgentTransition::Offer(c(1), Channel::Voice))
        .unwrap();
    a.apply(&AgentTransition::Accept(c(1))).unwrap();
    a.apply(&AgentTransition::GoNotReady(NotReadyReason::Code(
        "lunch".into(),
    )))
    .unwrap();
    assert_eq!(a.status(), AgentStatus::OnContact);
    assert!(matches!(
        a.apply(&AgentTransition::LogOut),
        Err(IllegalAgentTransition::Busy(1))
    ));
    a.apply(&AgentTransition::End(c(1))).unwrap();
    assert_eq!(a.status(), AgentStatus::WrapUp);
    a.apply(&AgentTransition::FinishWrapUp(c(1))).unwrap();
    assert_eq!(a.status(), AgentStatus::NotReady("lunch".into()));
}

#[test]
fn logging_out_withdraws_pending_offers() {
    let mut a = chat_agent();
    a.apply(&AgentTransition::LogIn).unwrap();
    a.apply(&AgentTransition::GoReady).unwrap();
    a.apply(&AgentTransition::Offer(c(5), Channel::Chat))
        .unwrap();
    let out = a.apply(&AgentTransition::LogOut).unwrap();
    assert_eq!(out.withdrawn, vec![c(5)]);
    assert_eq!(a.status(), AgentStatus::LoggedOut);
}

fn any_transition() -> impl Strategy<Value = AgentTransition> {
    let contact = (1u128..5).prop_map(c);
    let channel = prop_oneof![Just(Channel::Voice), Just(Channel::Chat)];
    prop_oneof![
        Just(AgentTransition::LogIn),
        Just(AgentTransition::GoReady),
        Just(AgentTransition::GoNotReady(NotReadyReason::Code(
            "break".into()
        ))),
        Just(AgentTransition::LogOut),
        (contact.clone(), channel).prop_map(|(c, ch)| AgentTransition::Offer(c, ch)),
        contact.clone().prop_map(AgentTransition::Accept),
        contact.clone().prop_map(AgentTransition::Reject),
        contact.clone().prop_map(AgentTransition::NoAnswer),
        contact.clone().prop_map(AgentTransition::Rescind),
        contact.clone().prop_map(AgentTransition::End),
        contact.prop_map(AgentTransition::FinishWrapUp),
    ]
}

proptest! {
    /// Over random sequences: capacity is never exceeded, no contact is held twice, a
    /// refused transition changes nothing, and a logged-out agent holds nothing.
    #[test]
    fn random_transition_sequences_keep_the_agent_invariants(
        ts in proptest::collection::vec(any_transition(), 0..60)
    ) {
        let mut a = AgentMachine::new(Capacity { voice: 1, chat: 2, callback: 1 }, 2);
        for t in &ts {
            let before = a.clone();
            match a.apply(t) {
                Ok(_) => {
                    if let AgentTransition::Offer(_, _) = t {
                        prop_assert_eq!(before.presence(), &Presence::Ready);
                    }
                }
                Err(_) => prop_assert_eq!(&a, &before),
            }
            for ch in Channel::ALL {
                prop_assert!(a.used(ch) <= a.capacity().on(ch));
            }
            let mut ids: Vec<_> = a.slots().iter().map(|s| s.contact).collect();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), a.slots().len());
            if a.presence() == &Presence::LoggedOut {
                prop_assert!(a.slots().is_empty());
            }
        }
    }
}
