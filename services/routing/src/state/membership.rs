//! The check `hotline ops` runs before it changes the routing group's voters, so an
//! operator cannot propose a change that would leave the group unable to commit.

use std::collections::BTreeSet;

use super::error::Refusal;

/// Checks a change of the voter set from `voters` to `proposed`, given the voters
/// currently `down` (unreachable), before it is proposed to Raft.
///
/// Refused, in this order:
///
/// 1. `proposed` is empty ([`Refusal::NoVoters`]).
/// 2. `proposed` has exactly two voters ([`Refusal::TwoVotersNeedWitness`]): a majority
///    of two is two, so losing either site stops the group; a two-site install runs a
///    witness voter in a third place. One voter is allowed (a single-site or
///    development install knowingly has no redundancy).
/// 3. Fewer than a majority (`n / 2 + 1`) of the **current** voters are reachable
///    (`voters` minus `down`): the change itself needs their quorum to commit
///    (joint consensus). Skipped when `voters` is empty (bootstrapping).
/// 4. Fewer than a majority of the **proposed** voters are reachable (`proposed` minus
///    `down`): the group would stop right after the change.
///
/// Each refusal says which set failed, how many were reachable and how many were needed.
pub fn check_membership_change(
    voters: &BTreeSet<u64>,
    down: &BTreeSet<u64>,
    proposed: &BTreeSet<u64>,
) -> Result<(), Refusal> {
    if proposed.is_empty() {
        return Err(Refusal::NoVoters);
    }
    if proposed.len() == 2 {
        return Err(Refusal::TwoVotersNeedWitness {
            voters: proposed.iter().copied().collect(),
        });
    }
    let check = |which: &str, set: &BTreeSet<u64>| {
        let reachable = set.difference(down).count();
        let needed = set.len() / 2 + 1;
        if reachable < needed {
            Err(Refusal::NoMajority {
                which: which.to_owned(),
                voters: set.iter().copied().collect(),
                reachable,
                needed,
            })
        } else {
            Ok(())
        }
    };
    if !voters.is_empty() {
        check("current", voters)?;
    }
    check("proposed", proposed)
}
