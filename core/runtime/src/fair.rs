//! Fair turns on the CPU for guests of different tenants.
//!
//! A guest runs only inside a poll of its call's future. Each poll takes one of a few
//! slots (one per core); a poll that finds none waits in its tenant's line, and a slot
//! that frees goes to the next tenant in turn, not to whoever asked first. A tenant with
//! hundreds of calls in flight therefore gets one turn per round like a tenant with one,
//! and its calls wait parked instead of crowding the scheduler's run queue. Waiting for
//! I/O (kv, outbound HTTP) holds no slot: the slot is held only while the guest's code
//! runs, and every epoch tick ends a poll.
//!
//! Guests run on the async runtime's worker threads, which also read and answer every
//! connection and drive the I/O driver between tasks. A call that has already run a whole
//! epoch tick of guest code is *heavy*, and heavy polls hold at most all slots but one
//! (at least one): with two cores or more, however many CPU-bound guests run, one worker
//! is always between guests, free for HTTP, for other tenants' fresh calls and for I/O. A
//! call's first polls are light, so short calls (most of them) never wait for each other on
//! two cores, unless its plugin version's calls lately ran a whole tick or more on average
//! ([`CallWeight`]): then the call is heavy from its first poll, and a flood of calls that
//! each run a little over a tick does not get every core for each call's first tick.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// How much guest CPU a plugin version's calls took lately: a moving average over its last
/// calls, each weighing a quarter.
#[derive(Debug, Default)]
pub(crate) struct CallWeight {
    average_ns: AtomicU64,
}

impl CallWeight {
    /// Adds a call's guest CPU time.
    pub(crate) fn ran(&self, cpu: Duration) {
        let sample = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        let average = self.average_ns.load(Ordering::Relaxed);
        // Calls finishing at once lose a sample now and then; the average is a hint.
        self.average_ns
            .store(average - average / 4 + sample / 4, Ordering::Relaxed);
    }

    /// Whether the version's calls lately ran a whole epoch tick of guest code or more, on
    /// average: its next call is heavy from its first poll.
    pub(crate) fn heavy(&self) -> bool {
        self.average_ns.load(Ordering::Relaxed) >= crate::engine::TICK.as_nanos() as u64
    }
}

#[derive(Debug)]
struct Waiting {
    ticket: u64,
    waker: Waker,
    heavy: bool,
}

#[derive(Debug)]
struct State {
    /// Slots free now.
    free: usize,
    /// Heavy polls that may still start: all slots but one (at least one), less the heavy
    /// polls running.
    heavy_room: usize,
    next_ticket: u64,
    /// Tenants with someone waiting, in turn order; exactly the tenants in `lines`.
    turns: VecDeque<Arc<str>>,
    /// Each waiting tenant's polls, first come first.
    lines: HashMap<Arc<str>, VecDeque<Waiting>>,
    /// Tickets a freed slot was handed to, not yet claimed by their poll, and whether the
    /// poll is heavy.
    granted: HashMap<u64, bool>,
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
    /// Whether this call holds a slot now (a poll is running), and if so whether heavy.
    holding: Option<bool>,
}

impl FairGate {
    /// A gate with `slots` slots (one per core), `slots - 1` of them (at least one) open
    /// to heavy polls.
    pub(crate) fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            state: Arc::new(Mutex::new(State {
                free: slots,
                heavy_room: (slots - 1).max(1),
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
            holding: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fair gate poisoned")
    }

    /// Hands free slots to waiting polls, in turn, for as long as one may start.
    fn hand_on(&self) {
        loop {
            let next = self.lock().grant_next();
            match next {
                Some((_, waker)) => waker.wake(),
                None => break,
            }
        }
    }
}

impl State {
    fn may_start(&self, heavy: bool) -> bool {
        self.free > 0 && (!heavy || self.heavy_room > 0)
    }

    fn take(&mut self, heavy: bool) {
        self.free -= 1;
        if heavy {
            self.heavy_room -= 1;
        }
    }

    fn give_back(&mut self, heavy: bool) {
        self.free += 1;
        if heavy {
            self.heavy_room += 1;
        }
    }

    /// Hands a free slot to the first tenant in turn whose next poll may start, and moves
    /// that tenant to the back; returns the ticket and the waker to wake. A tenant whose
    /// next poll is heavy while no heavy poll may start keeps its place.
    fn grant_next(&mut self) -> Option<(u64, Waker)> {
        if self.free == 0 {
            return None;
        }
        let position = self.turns.iter().position(|tenant| {
            self.lines
                .get(tenant)
                .and_then(VecDeque::front)
                .is_some_and(|waiting| self.may_start(waiting.heavy))
        })?;
        let tenant = self.turns.remove(position)?;
        let line = self.lines.get_mut(&tenant)?;
        let waiting = line.pop_front()?;
        if line.is_empty() {
            self.lines.remove(&tenant);
        } else {
            self.turns.push_back(tenant);
        }
        self.take(waiting.heavy);
        self.granted.insert(waiting.ticket, waiting.heavy);
        Some((waiting.ticket, waiting.waker))
    }
}

impl Seat {
    /// Takes a slot for one poll, or queues this poll in the tenant's line. `heavy`: the
    /// call has already run a whole epoch tick of guest code.
    pub(crate) fn enter(&mut self, cx: &mut Context<'_>, heavy: bool) -> Poll<()> {
        let mut state = self.gate.lock();
        if let Some(ticket) = self.ticket {
            if let Some(heavy) = state.granted.remove(&ticket) {
                self.ticket = None;
                self.holding = Some(heavy);
                return Poll::Ready(());
            }
            // Still waiting: keep the newest waker.
            if let Some(line) = state.lines.get_mut(&self.tenant)
                && let Some(entry) = line.iter_mut().find(|w| w.ticket == ticket)
            {
                entry.waker = cx.waker().clone();
            }
            return Poll::Pending;
        }
        if state.turns.is_empty() && state.may_start(heavy) {
            state.take(heavy);
            self.holding = Some(heavy);
            return Poll::Ready(());
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let line = state.lines.entry(Arc::clone(&self.tenant)).or_default();
        let first = line.is_empty();
        line.push_back(Waiting {
            ticket,
            waker: cx.waker().clone(),
            heavy,
        });
        if first {
            state.turns.push_back(Arc::clone(&self.tenant));
        }
        // A slot may be free while others wait (they were woken but have not run yet, or
        // only heavy polls wait and none may start): then the turn order decides now, and
        // this poll runs at once if its turn comes first.
        let wake = match state.grant_next() {
            Some((granted, _)) if granted == ticket => {
                state.granted.remove(&ticket);
                self.holding = Some(heavy);
                return Poll::Ready(());
            }
            Some((_, waker)) => Some(waker),
            None => None,
        };
        drop(state);
        self.ticket = Some(ticket);
        if let Some(waker) = wake {
            waker.wake();
        }
        Poll::Pending
    }

    /// Gives the slot back after the poll.
    pub(crate) fn leave(&mut self) {
        let Some(heavy) = self.holding.take() else {
            return;
        };
        self.gate.lock().give_back(heavy);
        self.gate.hand_on();
    }
}

impl Drop for Seat {
    /// A call dropped while waiting (deadline, client gone) leaves its line, and a slot
    /// handed to it, or held by a poll that never returned, goes on to the next.
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        let mut freed = false;
        if let Some(heavy) = self.holding.take() {
            state.give_back(heavy);
            freed = true;
        }
        if let Some(ticket) = self.ticket.take() {
            if let Some(heavy) = state.granted.remove(&ticket) {
                state.give_back(heavy);
                freed = true;
            } else if let Some(line) = state.lines.get_mut(&self.tenant) {
                line.retain(|w| w.ticket != ticket);
                if line.is_empty() {
                    state.lines.remove(&self.tenant);
                    state.turns.retain(|t| *t != self.tenant);
                }
                // A heavy poll at the front of its line may have kept the polls behind it,
                // or other tenants' turns, from a free slot.
                freed = true;
            }
        }
        drop(state);
        if freed {
            self.gate.hand_on();
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

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        (count, waker)
    }

    /// The gate's bookkeeping when nothing runs or waits: every slot free, nobody in line.
    fn assert_idle(gate: &FairGate, slots: usize) {
        let state = gate.lock();
        assert_eq!(state.free, slots);
        assert_eq!(state.heavy_room, (slots - 1).max(1));
        assert!(state.turns.is_empty() && state.lines.is_empty() && state.granted.is_empty());
    }

    #[test]
    fn a_version_whose_calls_run_a_tick_or_more_is_heavy_until_they_do_not() {
        let weight = CallWeight::default();
        assert!(!weight.heavy(), "a version nobody has called yet");
        weight.ran(Duration::from_micros(50));
        assert!(!weight.heavy());
        // Calls of 1.6 ms (a little over a tick): heavy after a few.
        for _ in 0..3 {
            weight.ran(Duration::from_micros(1_600));
        }
        assert!(!weight.heavy(), "not after three");
        for _ in 0..5 {
            weight.ran(Duration::from_micros(1_600));
        }
        assert!(weight.heavy());
        // One short call does not undo that; a run of them does.
        weight.ran(Duration::from_micros(50));
        assert!(weight.heavy());
        for _ in 0..8 {
            weight.ran(Duration::from_micros(50));
        }
        assert!(!weight.heavy());
        // A call that hit its deadline (seconds of guest code) makes it heavy at once.
        weight.ran(Duration::from_secs(1));
        assert!(weight.heavy());
    }

    #[test]
    fn a_freed_slot_goes_to_the_next_tenant_in_turn() {
        let gate = FairGate::new(1);
        let (_, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut a1 = gate.seat("a");
        let mut a2 = gate.seat("a");
        let mut a3 = gate.seat("a");
        let mut b1 = gate.seat("b");
        assert!(a1.enter(&mut cx, false).is_ready());
        assert!(a2.enter(&mut cx, false).is_pending());
        assert!(a3.enter(&mut cx, false).is_pending());
        assert!(b1.enter(&mut cx, false).is_pending());
        // a1 finishes its poll: a2 was first in line, and a's turn comes first.
        a1.leave();
        assert!(a2.enter(&mut cx, false).is_ready());
        assert!(a3.enter(&mut cx, false).is_pending());
        // a2 finishes: b's turn, although a3 asked before b1.
        a2.leave();
        assert!(a3.enter(&mut cx, false).is_pending());
        assert!(b1.enter(&mut cx, false).is_ready());
        b1.leave();
        assert!(a3.enter(&mut cx, false).is_ready());
        a3.leave();
        assert_idle(&gate, 1);
    }

    #[test]
    fn dropped_waiters_release_what_they_were_given() {
        let gate = FairGate::new(1);
        let (woken, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut a = gate.seat("a");
        let mut b = gate.seat("b");
        let mut c = gate.seat("c");
        let mut d = gate.seat("d");
        assert!(a.enter(&mut cx, false).is_ready());
        assert!(b.enter(&mut cx, false).is_pending());
        assert!(c.enter(&mut cx, false).is_pending());
        assert!(d.enter(&mut cx, false).is_pending());
        a.leave(); // handed to b
        drop(b); // b never claims it: it goes on to c
        drop(d); // d leaves its line, and its tenant leaves the turns
        assert!(c.enter(&mut cx, false).is_ready());
        c.leave();
        drop(c);
        assert_idle(&gate, 1);
        assert!(woken.0.load(Ordering::SeqCst) >= 2);
    }

    #[test]
    fn a_call_dropped_inside_its_poll_gives_its_slot_back() {
        let gate = FairGate::new(1);
        let (_, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut a = gate.seat("a");
        let mut b = gate.seat("b");
        assert!(a.enter(&mut cx, true).is_ready());
        assert!(b.enter(&mut cx, false).is_pending());
        // The poll never returned (it panicked): dropping the call frees the slot for b.
        drop(a);
        assert!(b.enter(&mut cx, false).is_ready());
        b.leave();
        assert_idle(&gate, 1);
    }

    #[test]
    fn heavy_polls_leave_one_slot_to_everyone_else() {
        // Two cores: one heavy poll at a time, the other slot for light ones.
        let gate = FairGate::new(2);
        let (_, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut a1 = gate.seat("a");
        let mut a2 = gate.seat("a");
        let mut a3 = gate.seat("a");
        let mut b = gate.seat("b");
        assert!(a1.enter(&mut cx, true).is_ready());
        // A second heavy poll waits although a slot is free...
        assert!(a2.enter(&mut cx, true).is_pending());
        // ...and that slot is there for another tenant's light poll at once,
        assert!(b.enter(&mut cx, false).is_ready());
        // while a light poll of the busy tenant waits behind its own heavy one.
        assert!(a3.enter(&mut cx, false).is_pending());
        b.leave();
        assert!(a3.enter(&mut cx, false).is_pending());
        // The heavy poll ends: the next heavy one starts, then the light one behind it.
        a1.leave();
        assert!(a2.enter(&mut cx, true).is_ready());
        assert!(a3.enter(&mut cx, false).is_ready());
        a2.leave();
        a3.leave();
        assert_idle(&gate, 2);
    }

    #[test]
    fn with_many_cores_all_but_one_run_heavy_polls() {
        let gate = FairGate::new(4);
        let (_, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut heavy: Vec<Seat> = (0..4).map(|_| gate.seat("a")).collect();
        let mut ready = 0;
        for seat in &mut heavy {
            if seat.enter(&mut cx, true).is_ready() {
                ready += 1;
            }
        }
        assert_eq!(ready, 3);
        let mut light = gate.seat("b");
        assert!(light.enter(&mut cx, false).is_ready());
        light.leave();
        drop(light);
        drop(heavy);
        assert_idle(&gate, 4);
    }
}
