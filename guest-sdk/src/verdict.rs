//! What a plugin decided for one event.

use crate::__private::WitVerdict;
use crate::Event;

/// The outcome of handling one event.
///
/// Build one with [`Verdict::pass`], [`Verdict::drop`] and [`Verdict::emit`], or with the
/// shorthands [`Event::pass`] and [`Event::drop`]. It is a plain enum so plugin unit tests can
/// `match` on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Filter: stop here, deliver nothing, record the reason.
    Drop(String),
    /// Transform (or pass unchanged): continue with this event.
    Pass(Event),
    /// Fan out: continue with each of these events. An empty list drops the event.
    Emit(Vec<Event>),
}

impl Verdict {
    /// Continue with `ev` (changed or not).
    pub fn pass(ev: Event) -> Self {
        Verdict::Pass(ev)
    }

    /// Stop processing; nothing is delivered. `reason` is recorded by the router, so make it
    /// say why (e.g. `"noise outcome: spam"`).
    pub fn drop(reason: impl Into<String>) -> Self {
        Verdict::Drop(reason.into())
    }

    /// Replace the event with `events`, each routed on independently. The host assigns fresh
    /// ids; build them with [`Event::derive`] or [`Event::new`].
    pub fn emit(events: Vec<Event>) -> Self {
        Verdict::Emit(events)
    }

    pub(crate) fn into_wit(self) -> WitVerdict {
        match self {
            Verdict::Drop(reason) => WitVerdict::Drop(reason),
            Verdict::Pass(ev) => WitVerdict::Pass(ev.into_wit()),
            Verdict::Emit(events) => WitVerdict::Emit(events.into_iter().map(Event::into_wit).collect()),
        }
    }
}
