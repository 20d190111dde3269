//! Skills and the requirements queues place on them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::SkillId;

/// How well an agent masters a skill: 1 (novice) to 5 (expert).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Proficiency(u8);

/// A proficiency outside 1–5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proficiency {0} is out of range: use 1 (novice) to 5 (expert)")]
pub struct InvalidProficiency(pub u8);

impl Proficiency {
    /// The lowest proficiency, the default minimum of a requirement.
    pub const MIN: Proficiency = Proficiency(1);
    /// The highest proficiency.
    pub const MAX: Proficiency = Proficiency(5);

    /// Checks that `level` is within 1–5.
    pub fn new(level: u8) -> Result<Self, InvalidProficiency> {
        if (1..=5).contains(&level) {
            Ok(Self(level))
        } else {
            Err(InvalidProficiency(level))
        }
    }

    /// The level as a number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Proficiency {
    type Error = InvalidProficiency;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<Proficiency> for u8 {
    fn from(p: Proficiency) -> u8 {
        p.0
    }
}

impl fmt::Debug for Proficiency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

impl fmt::Display for Proficiency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A skill an agent has, at a level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Skill {
    /// Which skill.
    pub skill: SkillId,
    /// How well.
    pub level: Proficiency,
}

/// A skill a queue requires, at a minimum level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkillRequirement {
    /// Which skill.
    pub skill: SkillId,
    /// The lowest acceptable level.
    #[serde(default = "min_level")]
    pub min: Proficiency,
}

fn min_level() -> Proficiency {
    Proficiency::MIN
}

impl SkillRequirement {
    /// Whether an agent with `skills` meets this requirement.
    pub fn met_by(&self, skills: &[Skill]) -> bool {
        skills
            .iter()
            .any(|s| s.skill == self.skill && s.level >= self.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proficiency_outside_one_to_five_is_refused() {
        assert!(Proficiency::new(0).is_err());
        assert!(Proficiency::new(6).is_err());
        assert_eq!(Proficiency::new(5).unwrap(), Proficiency::MAX);
        let err: Result<Proficiency, _> = serde_json_like(7);
        assert!(err.is_err());
    }

    fn serde_json_like(v: u8) -> Result<Proficiency, InvalidProficiency> {
        Proficiency::try_from(v)
    }

    #[test]
    fn a_requirement_is_met_only_at_or_above_its_minimum() {
        let billing = SkillId::new("billing").unwrap();
        let req = SkillRequirement {
            skill: billing.clone(),
            min: Proficiency::new(3).unwrap(),
        };
        let at = |l| {
            vec![Skill {
                skill: billing.clone(),
                level: Proficiency::new(l).unwrap(),
            }]
        };
        assert!(!req.met_by(&at(2)));
        assert!(req.met_by(&at(3)));
        assert!(req.met_by(&at(5)));
        assert!(!req.met_by(&[]));
    }
}
