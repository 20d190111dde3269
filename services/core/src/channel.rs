//! Channels (the medium of a contact) and an agent's capacity on each.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The medium a contact arrives on. A voice leg is one more channel: the ACD treats all
/// channels alike and only capacity differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A phone call.
    Voice,
    /// A web chat.
    Chat,
    /// A callback the customer asked for (the agent calls out).
    Callback,
}

impl Channel {
    /// Every channel, in index order.
    pub const ALL: [Channel; 3] = [Channel::Voice, Channel::Chat, Channel::Callback];

    /// A dense index for per-channel arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The lowercase name used in config, events and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Callback => "callback",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many contacts of each channel an agent may hold at once (offered, connected or in
/// wrap-up): e.g. one voice call, or up to three chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capacity {
    /// Simultaneous phone calls (0 or 1 in practice).
    #[serde(default = "one")]
    pub voice: u8,
    /// Simultaneous chats.
    #[serde(default)]
    pub chat: u8,
    /// Simultaneous callbacks.
    #[serde(default = "one")]
    pub callback: u8,
}

fn one() -> u8 {
    1
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            voice: 1,
            chat: 0,
            callback: 1,
        }
    }
}

impl Capacity {
    /// The capacity on `channel`.
    pub fn on(&self, channel: Channel) -> u8 {
        match channel {
            Channel::Voice => self.voice,
            Channel::Chat => self.chat,
            Channel::Callback => self.callback,
        }
    }
}
