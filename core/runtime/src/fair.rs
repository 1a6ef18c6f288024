//! Fair turns on the CPU for guests of different tenants.
//!
//! A guest runs only inside a poll of its call's future. Each poll takes one of a few
//! slots (one per core); a poll that finds none waits in its tenant's line, and a slot
//! that frees goes to the next tenant in turn, not to whoever asked first. A tenant with
//! hundreds of calls in flight therefore gets one turn per round like a tenant with one,
//! and its calls wait parked instead of crowding the scheduler's run queue. Waiting for
//! I/O (kv, outbound HTTP) holds no slot: the slot is held only while the guest's code
//! runs, and every epoch tick ends a poll.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct Line {
    /// Waiting polls: ticket and waker.
    waiting: VecDeque<(u64, Waker)>,
}

#[derive(Debug)]
struct State {
    free: usize,
    next_ticket: u64,
    /// Tenants with someone waiting, in turn order.
    turns: VecDeque<Arc<str>>,
    lines: HashMap<Arc<str>, Line>,
    /// Tickets a freed slot was handed to, not yet claimed by their poll.
    granted: HashMap<u64, ()>,
}

/// The slots and the lines; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct FairGate {
    state: Arc<Mutex<State>>,
}

/// One call's place at the gate.
#[derive(Debug)]
pub(crate) struct Seat {
    gate: FairGate,
    tenant: Arc<str>,
    /// The ticket of this call's waiting poll, if it waits.
    ticket: Option<u64>,
}

impl FairGate {
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                free: slots.max(1),
                next_ticket: 0,
                turns: VecDeque::new(),
                lines: HashMap::new(),
                granted: HashMap::new(),
            })),
        }
    }

    pub(crate) fn seat(&self, tenant: &str) -> Seat {
        Seat {
            gate: self.clone(),
            tenant: Arc::from(tenant),
            ticket: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fair gate poisoned")
    }
}

impl State {
    /// Hands a free slot to the next tenant in turn; returns the waker to wake.
    fn hand_on(&mut self) -> Option<Waker> {
        while let Some(tenant) = self.turns.pop_front() {
            let Some(line) = self.lines.get_mut(&tenant) else {
                continue;
            };
            let Some((ticket, waker)) = line.waiting.pop_front() else {
                self.lines.remove(&tenant);
                continue;
            };
            if line.waiting.is_empty() {
                self.lines.remove(&tenant);
            } else {
                self.turns.push_back(tenant);
            }
            self.granted.insert(ticket, ());
            return Some(waker);
        }
        self.free += 1;
        None
    }
}

impl Seat {
    /// Takes a slot for one poll, or queues this poll in the tenant's line.
    pub(crate) fn enter(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.gate.lock();
        if let Some(ticket) = self.ticket {
            if state.granted.remove(&ticket).is_some() {
                self.ticket = None;
                return Poll::Ready(());
            }
            // Still waiting: keep the newest waker.
            if let Some(line) = state.lines.get_mut(&self.tenant)
                && let Some(entry) = line.waiting.iter_mut().find(|(t, _)| *t == ticket)
            {
                entry.1 = cx.waker().clone();
            }
            return Poll::Pending;
        }
        if state.free > 0 && state.turns.is_empty() {
            state.free -= 1;
            return Poll::Ready(());
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let line = state.lines.entry(Arc::clone(&self.tenant)).or_default();
        let first = line.waiting.is_empty();
        line.waiting.push_back((ticket, cx.waker().clone()));
        if first {
            state.turns.push_back(Arc::clone(&self.tenant));
        }
        // A slot may be free while others wait (they were woken but have not run yet):
        // then the turn order decides, and someone is woken now.
        let wake = if state.free > 0 {
            state.free -= 1;
            state.hand_on()
        } else {
            None
        };
        drop(state);
        self.ticket = Some(ticket);
        if let Some(waker) = wake {
            waker.wake();
        }
        Poll::Pending
    }

    /// Gives the slot back after the poll.
    pub(crate) fn leave(&self) {
        let waker = self.gate.lock().hand_on();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Seat {
    /// A call dropped while waiting (deadline, client gone) leaves its line, and a slot
    /// handed to it goes on to the next.
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let mut state = self.gate.lock();
        let waker = if state.granted.remove(&ticket).is_some() {
            state.hand_on()
        } else {
            if let Some(line) = state.lines.get_mut(&self.tenant) {
                line.waiting.retain(|(t, _)| *t != ticket);
            }
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn cx(count: &Arc<Count>) -> Waker {
        Waker::from(Arc::clone(count))
    }

    #[test]
    fn a_freed_slot_goes_to_the_next_tenant_in_turn() {
        let gate = FairGate::new(1);
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = cx(&woken);
        let mut cx = Context::from_waker(&waker);
        let mut a1 = gate.seat("a");
        let mut a2 = gate.seat("a");
        let mut a3 = gate.seat("a");
        let mut b1 = gate.seat("b");
        assert!(a1.enter(&mut cx).is_ready());
        assert!(a2.enter(&mut cx).is_pending());
        assert!(a3.enter(&mut cx).is_pending());
        assert!(b1.enter(&mut cx).is_pending());
        // a1 finishes its poll: a2 was first in line, and a's turn comes first.
        a1.leave();
        assert!(a2.enter(&mut cx).is_ready());
        assert!(a3.enter(&mut cx).is_pending());
        // a2 finishes: b's turn, although a3 asked before b1.
        a2.leave();
        assert!(a3.enter(&mut cx).is_pending());
        assert!(b1.enter(&mut cx).is_ready());
        b1.leave();
        assert!(a3.enter(&mut cx).is_ready());
        a3.leave();
        assert_eq!(gate.lock().free, 1);
    }

    #[test]
    fn dropped_waiters_release_what_they_were_given() {
        let gate = FairGate::new(1);
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = cx(&woken);
        let mut cx = Context::from_waker(&waker);
        let mut a = gate.seat("a");
        let mut b = gate.seat("b");
        let mut c = gate.seat("c");
        assert!(a.enter(&mut cx).is_ready());
        assert!(b.enter(&mut cx).is_pending());
        assert!(c.enter(&mut cx).is_pending());
        a.leave(); // handed to b
        drop(b); // b never claims it: it goes on to c
        assert!(c.enter(&mut cx).is_ready());
        c.leave();
        drop(c);
        assert_eq!(gate.lock().free, 1);
        assert!(woken.0.load(Ordering::SeqCst) >= 2);
    }
}
