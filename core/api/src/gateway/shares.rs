//! Each tenant's share of the platform, taken in two steps.
//!
//! **Admission**, before anything else a call costs. Every call is counted for its tenant
//! from the moment its path is read to its answer (a call with a body leaves the count
//! while its body arrives, so a client trickling an upload holds a connection, never a
//! share, and waits for its share again once the body is in). A tenant under its share is
//! admitted at once; a call of a tenant holding its share waits, parked, in its tenant's
//! line until the tenant is under its share again, at most `runtime.tenant_queue_timeout_ms`,
//! and is then refused with 429 and `Retry-After: 1`. Refused on arrival, it has cost no
//! more than the parsing of its request: its install was not looked up. Places that free
//! go to the waiting lines in turn, and waiting calls go before a new call. A tenant's share
//! is held to in two cases:
//!
//! - the process is saturated by count: `runtime.saturation_calls` calls in flight (16 per
//!   core unless set). The share is that number ÷ the holders with calls in flight, at least
//!   1; a tenant alone may have them all.
//! - the worker threads are busy: admitted calls waited longer than [`BUSY_DELAY`] for one
//!   (see [`Place::wait_turn`]), on average, as measured within the last [`BUSY_FRESH`].
//!   Then a tenant with one call per core or more waits when it has more in flight than
//!   the other tenants have on average, or when it is alone in flight but another tenant
//!   was admitted within [`RECENT`] (that tenant calls between these calls, and its next
//!   call would queue behind them). The tenant with the fewest calls in flight, a quiet
//!   one, is never held back for the worker threads' sake, and neither is a tenant with
//!   nobody else about: its calls may be waiting on I/O, and there is nobody to protect.
//!
//! Waiting, rather than an answer at once, is what keeps a flood off the worker threads: a
//! client answered 429 at once sends its next request at once, and a few hundred such
//! connections cost the server, in parsing and answering alone, about what serving them did
//! (a light call costs little more than its 429). A parked call costs a connection and its
//! request's memory, like a call to a slow plugin, and no CPU. A call that waited goes on
//! behind the next look at the sockets, as a new request would.
//!
//! An admitted call first lets the tasks already waiting for a worker thread go before it
//! ([`Place::wait_turn`]), so it is counted while it waits, and the wait is measured. Without
//! that a light call would be handled in one poll, from its path to its answer, and a tenant
//! flooding with hundreds of connections, whose cost is the time its requests wait for the
//! worker threads, would never show as more than a call or two in flight. A call whose
//! tenant is alone (the only holder in flight, nobody waiting, no other admitted within
//! [`RECENT`]) goes on at once: there is nobody to be fair to, and the trip to the back of
//! the run queue is not free (one more poll, and about one more look at the sockets for
//! every four calls). The first call of another tenant ends that, and the measure resumes
//! with the next call. A quiet tenant's call (fewer in flight than the other holders on
//! average) goes on at once too: it is never held back for the worker threads' sake, and
//! a second wait behind a flood's ready tasks would only add to its latency.
//!
//! Paths naming a tenant this process does not know are counted together, as one holder:
//! made-up tenant names win an attacker one share, not one per name, and the counts never
//! hold more names than the platform's tenants. The process knows the tenants in the
//! database when its gateway starts watching, those changed since (the revision log), and
//! any whose install it has resolved. The refusal's answer is the same for every tenant,
//! known or not, and carries no counts.
//!
//! **Concurrency**, once the install is resolved: `runtime.tenant_concurrency` plugin calls
//! at once per tenant, then a short queue, then 429 with `Retry-After`. A tenant flooding the
//! gateway fills only its own share. Each wait (for admission, again after a body, for a
//! slot, for memory) is bounded by `runtime.tenant_queue_timeout_ms` on its own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use guildhall_domain::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Gateway;
use crate::error::ApiError;

pub(super) struct TenantGate {
    pub(super) permits: Arc<Semaphore>,
    pub(super) waiting: AtomicUsize,
}

/// The calls in flight at this process's gateway, per tenant, and the calls waiting for
/// their tenant's share.
#[derive(Debug)]
pub(super) struct Admission {
    /// Calls in flight at which the process is saturated.
    limit: usize,
    /// How long a call over its tenant's share waits before 429.
    wait: Duration,
    /// How long admitted calls waited for a worker thread lately, in microseconds (a
    /// moving average).
    delay_us: AtomicU64,
    /// When the last of those waits was measured, in milliseconds since `started`.
    measured_ms: AtomicU64,
    started: Instant,
    /// The calls a tenant may always have in flight: one per core.
    floor: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Calls in flight.
    total: usize,
    /// Holders (tenants, and the tenants not served yet together) with calls in flight.
    active: usize,
    /// Calls in flight naming tenants this process has not served yet.
    unknown: usize,
    /// The tenants this process has served, and their calls in flight.
    known: HashMap<TenantId, usize>,
    /// Calls waiting for their holder's share, per holder (`None`: the tenants not served
    /// yet), first come first.
    lines: HashMap<Option<TenantId>, VecDeque<(u64, Waker)>>,
    /// Holders with calls waiting, in turn order; exactly the keys of `lines`.
    turns: VecDeque<Option<TenantId>>,
    /// Waiting calls handed a place (already counted), not yet claimed.
    granted: HashSet<u64>,
    next_ticket: u64,
    /// The known tenant admitted last and when, then the last one admitted before it that
    /// is not the same tenant: enough to tell whether any tenant but a given one was
    /// admitted lately.
    recent: [Option<(Option<TenantId>, Instant)>; 2],
}

/// What holds tenants to their shares now.
#[derive(Debug, Clone, Copy)]
struct Pressure {
    /// Calls in flight at which the process is saturated.
    limit: usize,
    /// Whether tasks wait for the worker threads longer than [`BUSY_DELAY`], as measured
    /// within the last [`BUSY_FRESH`].
    busy: bool,
    /// The calls a holder may always have in flight when `busy`: one per core.
    floor: usize,
    now: Instant,
}

/// How long, on average, admitted calls may wait for a worker thread (see
/// [`Place::wait_turn`]) before the worker threads count as busy. A request served alone at
/// full speed on two cores waits 0.2 to 0.4 ms; under a flood, several milliseconds.
const BUSY_DELAY: Duration = Duration::from_millis(1);

/// How long a measure of the worker threads' wait counts: when no call has been admitted
/// for this long there is nothing recent to go by, and they count as not busy (so calls
/// held back for their sake are not held on an old measure).
const BUSY_FRESH: Duration = Duration::from_millis(100);

/// How recently another holder must have been admitted for a holder alone in flight to be
/// held back while the worker threads are busy: a tenant calling steadily, between its
/// calls, is protected; with nobody else about there is nobody to protect.
const RECENT: Duration = Duration::from_secs(1);

/// Whose count a call is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// Its tenant's.
    Tenant,
    /// The count of the tenants not served yet.
    Unknown,
}

impl Holder {
    fn of(self, tenant: &TenantId) -> Option<&TenantId> {
        match self {
            Holder::Tenant => Some(tenant),
            Holder::Unknown => None,
        }
    }
}

/// How a call was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entered {
    /// At once, and it goes on without a turn behind the run queue: its holder is alone
    /// (see [`Counts::alone`]), or quiet, with fewer calls in flight than the other holders
    /// on average (never held back for the worker threads' sake).
    NoTurn,
    /// At once, beside other holders' calls: it takes its turn.
    Turn,
    /// After waiting in its holder's line.
    Waited,
}

/// Why a call was refused: the process was saturated and its tenant held its fair share
/// for as long as the call could wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Saturated {
    /// The calls the tenant had in flight when this one came.
    pub(crate) held: usize,
    /// Its fair share of them then.
    pub(crate) share: usize,
    /// Whether the tenant has been served here (otherwise the count is of every tenant not
    /// served yet).
    pub(crate) known: bool,
}

/// A call's place in the count, from [`Gateway::admit_call`]; it leaves the count when
/// dropped.
#[derive(Debug)]
pub(crate) struct Place<'a> {
    admission: &'a Admission,
    tenant: &'a TenantId,
    /// Whether the tenant is counted as itself (it had been served when the call came in,
    /// or this call's install resolved since).
    known: bool,
    /// The count the call is in, while counted.
    counted: Option<Holder>,
    /// Whether [`Place::wait_turn`] lets the call go on at once: when last counted, its
    /// holder was alone (see [`Counts::alone`]), or had fewer calls in flight than the
    /// other holders on average (a quiet tenant beside a flood).
    at_once: bool,
}

impl Counts {
    fn held(&self, tenant: &TenantId) -> (Holder, usize) {
        match self.known.get(tenant) {
            Some(held) => (Holder::Tenant, *held),
            None => (Holder::Unknown, self.unknown),
        }
    }

    fn held_by(&self, tenant: Option<&TenantId>) -> usize {
        match tenant {
            Some(tenant) => self.known.get(tenant).copied().unwrap_or(0),
            None => self.unknown,
        }
    }

    /// Whether `holder` (`None`: the tenants not served yet), with `held` calls in flight,
    /// must wait for another: `Some(share)`, its share now, when so. With `limit` calls in
    /// flight or more its share is `limit` ÷ the holders with calls in flight (at least 1).
    /// While the worker threads are `busy`, a holder with `floor` calls or more waits when
    /// it has more than the other holders have on average, or, alone in flight, when
    /// another holder was admitted within [`RECENT`] (its next call would wait behind these
    /// for a worker thread). The holder with the fewest calls in flight never waits for the
    /// worker threads' sake, and neither does a tenant with nobody else about.
    fn refuses(&self, pressure: Pressure, holder: Option<&TenantId>, held: usize) -> Option<usize> {
        if self.total >= pressure.limit {
            let share = (pressure.limit / self.active.max(1)).max(1);
            if held >= share {
                return Some(share);
            }
        }
        if !pressure.busy || held < pressure.floor {
            return None;
        }
        let others = self.active - usize::from(held > 0);
        let theirs = self.total - held;
        if others == 0 {
            return self
                .admitted_lately_besides(holder, pressure.now)
                .then_some(pressure.floor);
        }
        (held * others > theirs).then(|| theirs.div_ceil(others).max(pressure.floor))
    }

    /// Whether a holder other than `holder` was admitted within [`RECENT`] of `now`.
    fn admitted_lately_besides(&self, holder: Option<&TenantId>, now: Instant) -> bool {
        self.recent.iter().flatten().any(|(other, at)| {
            other.as_ref() != holder && now.saturating_duration_since(*at) < RECENT
        })
    }

    /// Whether `holder`, just counted, is the only holder in flight, with nobody waiting and
    /// no other holder admitted within [`RECENT`] of `now`.
    fn alone(&self, holder: Option<&TenantId>, now: Instant) -> bool {
        self.active == 1 && self.turns.is_empty() && !self.admitted_lately_besides(holder, now)
    }

    /// Whether a holder with `held` calls in flight (this one counted) has fewer than the
    /// other holders in flight have on average.
    fn below_the_others(&self, held: usize) -> bool {
        let others = self.active.saturating_sub(1);
        others > 0 && held * others < self.total.saturating_sub(held)
    }

    /// Notes that `holder` was admitted at `now`. Calls naming tenants not known are not
    /// noted: made-up names must not make a tenant alone in flight wait.
    fn note_admitted(&mut self, holder: Option<&TenantId>, now: Instant) {
        if holder.is_none() {
            return;
        }
        match &mut self.recent[0] {
            Some((last, at)) if last.as_ref() == holder => *at = now,
            _ => {
                self.recent[1] = self.recent[0].take();
                self.recent[0] = Some((holder.cloned(), now));
            }
        }
    }

    fn held_mut(&mut self, tenant: Option<&TenantId>) -> Option<&mut usize> {
        match tenant {
            None => Some(&mut self.unknown),
            // A known tenant stays known, so its entry is there.
            Some(tenant) => self.known.get_mut(tenant),
        }
    }

    fn add(&mut self, tenant: Option<&TenantId>) {
        let Some(held) = self.held_mut(tenant) else {
            return;
        };
        *held += 1;
        if *held == 1 {
            self.active += 1;
        }
        self.total += 1;
    }

    fn remove(&mut self, tenant: Option<&TenantId>) {
        // Every removal follows its addition; a count at zero is left alone.
        let Some(held) = self.held_mut(tenant).filter(|held| **held > 0) else {
            return;
        };
        *held -= 1;
        if *held == 0 {
            self.active -= 1;
        }
        self.total -= 1;
    }

    /// Hands a place to the first waiting call, in turn, whose holder is no longer held to
    /// its share; counts it and returns the waker to wake.
    fn grant_next(&mut self, pressure: Pressure) -> Option<Waker> {
        let position = self.turns.iter().position(|line| {
            self.refuses(pressure, line.as_ref(), self.held_by(line.as_ref()))
                .is_none()
        })?;
        let line = self.turns.remove(position)?;
        let queue = self.lines.get_mut(&line)?;
        let (ticket, waker) = queue.pop_front()?;
        let empty = queue.is_empty();
        self.add(line.as_ref());
        self.note_admitted(line.as_ref(), pressure.now);
        self.granted.insert(ticket);
        if empty {
            self.lines.remove(&line);
        } else {
            self.turns.push_back(line);
        }
        Some(waker)
    }
}

impl Admission {
    /// The count of a process saturated at `limit` calls in flight, whose calls over their
    /// tenant's share wait at most `wait`.
    pub(super) fn new(limit: usize, wait: Duration) -> Self {
        Self {
            limit: limit.max(1),
            wait,
            delay_us: AtomicU64::new(0),
            measured_ms: AtomicU64::new(0),
            started: Instant::now(),
            floor: std::thread::available_parallelism().map_or(2, |n| n.get()),
            counts: Mutex::new(Counts::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().expect("admission counts poisoned")
    }

    fn pressure(&self) -> Pressure {
        let now = Instant::now();
        let measured =
            self.started + Duration::from_millis(self.measured_ms.load(Ordering::Relaxed));
        Pressure {
            limit: self.limit,
            busy: self.delay_us.load(Ordering::Relaxed) >= BUSY_DELAY.as_micros() as u64
                && now.saturating_duration_since(measured) < BUSY_FRESH,
            floor: self.floor,
            now,
        }
    }

    /// Counts the tenants named as served: their calls are counted as theirs from now on,
    /// not with the tenants not served yet (see the module's documentation).
    pub(super) fn know(&self, tenants: impl IntoIterator<Item = TenantId>) {
        let mut counts = self.lock();
        for tenant in tenants {
            counts.known.entry(tenant).or_insert(0);
        }
    }

    /// Adds how long an admitted call waited for a worker thread to the moving average.
    fn waited(&self, delay: Duration) {
        let sample = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        let average = self.delay_us.load(Ordering::Relaxed);
        // Races lose a sample now and then; the average is a hint, not an account.
        self.delay_us
            .store(average - average / 8 + sample / 8, Ordering::Relaxed);
        let at = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.measured_ms.store(at, Ordering::Relaxed);
    }

    /// Counts a call of `tenant`: at once when its tenant is not held to its share,
    /// otherwise after waiting in its holder's line; `Err` when the wait ran out. Returns
    /// whose count the call is in and how it was admitted.
    async fn enter(&self, tenant: &TenantId) -> Result<(Holder, Entered), Saturated> {
        let mut woken = Vec::new();
        let (holder, wait, refusal) = {
            let mut counts = self.lock();
            let pressure = self.pressure();
            // Calls already waiting go first when what held them back has passed (the worker
            // threads' measure went stale, or another holder came): a new call never gets
            // ahead of its own tenant's waiting ones.
            while !counts.turns.is_empty()
                && let Some(waker) = counts.grant_next(pressure)
            {
                woken.push(waker);
            }
            let (holder, held) = counts.held(tenant);
            let Some(share) = counts.refuses(pressure, holder.of(tenant), held) else {
                counts.add(holder.of(tenant));
                counts.note_admitted(holder.of(tenant), pressure.now);
                let entered = if counts.alone(holder.of(tenant), pressure.now)
                    || counts.below_the_others(held + 1)
                {
                    Entered::NoTurn
                } else {
                    Entered::Turn
                };
                drop(counts);
                woken.into_iter().for_each(Waker::wake);
                return Ok((holder, entered));
            };
            let line = holder.of(tenant).cloned();
            let ticket = counts.next_ticket;
            counts.next_ticket += 1;
            let queue = counts.lines.entry(line.clone()).or_default();
            // The waiting call's own waker replaces this at its first poll.
            queue.push_back((ticket, Waker::noop().clone()));
            if queue.len() == 1 {
                counts.turns.push_back(line.clone());
            }
            let refusal = Saturated {
                held,
                share,
                known: holder == Holder::Tenant,
            };
            let wait = Wait {
                admission: self,
                line,
                ticket,
                claimed: false,
            };
            (holder, wait, refusal)
        };
        woken.into_iter().for_each(Waker::wake);
        match tokio::time::timeout(self.wait, wait).await {
            Ok(()) => Ok((holder, Entered::Waited)),
            Err(_) => Err(refusal),
        }
    }

    /// A place for a call of `tenant`: see [`Gateway::admit_call`].
    pub(super) async fn admit<'a>(&'a self, tenant: &'a TenantId) -> Result<Place<'a>, Saturated> {
        let mut place = Place {
            admission: self,
            tenant,
            known: false,
            counted: None,
            at_once: false,
        };
        place.hold().await?;
        Ok(place)
    }

    /// Takes a call out of `tenant`'s count (`None`: the count of the tenants not served
    /// yet) and hands the place on to waiting calls.
    fn leave(&self, tenant: Option<&TenantId>) {
        let mut next = {
            let mut counts = self.lock();
            counts.remove(tenant);
            counts.grant_next(self.pressure())
        };
        while let Some(waker) = next {
            waker.wake();
            next = self.lock().grant_next(self.pressure());
        }
    }
}

/// A call waiting in its holder's line for a place; it leaves the line when dropped (its
/// wait ran out, or its client went away), and a place it was handed goes on.
#[derive(Debug)]
struct Wait<'a> {
    admission: &'a Admission,
    /// Its holder (`None`: the tenants not served yet).
    line: Option<TenantId>,
    ticket: u64,
    /// Whether the call took the place it was handed.
    claimed: bool,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut counts = self.admission.lock();
        if counts.granted.remove(&self.ticket) {
            drop(counts);
            self.claimed = true;
            return Poll::Ready(());
        }
        let ticket = self.ticket;
        if let Some(queue) = counts.lines.get_mut(&self.line)
            && let Some(entry) = queue.iter_mut().find(|(t, _)| *t == ticket)
        {
            entry.1 = cx.waker().clone();
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.claimed {
            return;
        }
        let mut counts = self.admission.lock();
        if counts.granted.remove(&self.ticket) {
            drop(counts);
            self.admission.leave(self.line.as_ref());
        } else if let Some(queue) = counts.lines.get_mut(&self.line) {
            queue.retain(|(t, _)| *t != self.ticket);
            if queue.is_empty() {
                counts.lines.remove(&self.line);
                let line = &self.line;
                counts.turns.retain(|l| l != line);
            }
        }
    }
}

impl Place<'_> {
    /// Counts the call again if it is not counted (see [`Place::release`]), waiting for its
    /// tenant's share like a new call.
    pub(crate) async fn hold(&mut self) -> Result<(), Saturated> {
        if self.counted.is_some() {
            return Ok(());
        }
        let (holder, entered) = self.admission.enter(self.tenant).await?;
        self.known |= holder == Holder::Tenant;
        self.counted = Some(holder);
        self.at_once = entered == Entered::NoTurn;
        if entered == Entered::Waited {
            // A call that waited in line goes on behind the next look at the sockets, as a
            // new request would: else a tenant's queued calls, ready in memory, would
            // always run ahead of other tenants' requests still arriving.
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Takes the call out of the count until [`Place::hold`], while it waits for its
    /// client (its body).
    pub(crate) fn release(&mut self) {
        if let Some(holder) = self.counted.take() {
            self.admission.leave(holder.of(self.tenant));
        }
    }

    /// The call's install resolved: its tenant exists and is counted as itself from now
    /// on, this call too.
    pub(crate) fn served(&mut self) {
        if self.known {
            return;
        }
        self.known = true;
        let moved = {
            let mut counts = self.admission.lock();
            if !counts.known.contains_key(self.tenant) {
                counts.known.insert(self.tenant.clone(), 0);
            }
            let moved = self.counted == Some(Holder::Unknown);
            if moved {
                counts.add(Some(self.tenant));
                counts.note_admitted(Some(self.tenant), Instant::now());
                self.counted = Some(Holder::Tenant);
            }
            moved
        };
        // The count of the tenants not served yet is one less: its line may go on.
        if moved {
            self.admission.leave(None);
        }
    }

    /// Lets the tasks already waiting for a worker thread run before this call goes on
    /// (see the module's documentation): the call goes to the back of the run queue once,
    /// and how long it waited there is the measure of how busy the worker threads are.
    pub(crate) async fn wait_turn(&self) {
        // Alone, nobody to be fair to; quiet, nothing to be held back for: no wait, no
        // measure (a measure older than [`BUSY_FRESH`] no longer counts, and the next call
        // of a busier tenant takes one).
        if self.at_once {
            return;
        }
        let started = Instant::now();
        let mut waited = false;
        poll_fn(|cx| {
            if waited {
                return Poll::Ready(());
            }
            waited = true;
            // Woken now, the task is queued behind the tasks ready now; tokio's `yield_now`
            // would also wait for the next look at the sockets, a longer wait under load.
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
        self.admission.waited(started.elapsed());
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

impl Gateway {
    /// A place in this process's count for a call of `tenant` (see the module's
    /// documentation), waiting for it when the process is saturated and the tenant holds
    /// its share; refused when the wait runs out.
    pub(crate) async fn admit_call<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> Result<Place<'a>, Saturated> {
        self.inner.admission.admit(tenant).await
    }

    fn gate(&self, tenant: &TenantId) -> Arc<TenantGate> {
        let concurrency = self.inner.runtime.config().tenant_concurrency.max(1);
        Arc::clone(
            self.inner
                .gates
                .lock()
                .expect("gates poisoned")
                .entry(tenant.clone())
                .or_insert_with(|| {
                    Arc::new(TenantGate {
                        permits: Arc::new(Semaphore::new(concurrency)),
                        waiting: AtomicUsize::new(0),
                    })
                }),
        )
    }

    /// Calls waiting for a slot and calls running, per tenant, for metrics.
    pub fn load(&self) -> Vec<(TenantId, usize, usize)> {
        let concurrency = self.inner.runtime.config().tenant_concurrency.max(1);
        self.inner
            .gates
            .lock()
            .expect("gates poisoned")
            .iter()
            .map(|(tenant, gate)| {
                (
                    tenant.clone(),
                    gate.waiting.load(Ordering::Relaxed),
                    concurrency.saturating_sub(gate.permits.available_permits()),
                )
            })
            .collect()
    }

    /// Takes a slot in the tenant's share, waiting briefly in a short queue.
    pub(crate) async fn admit(&self, tenant: &TenantId) -> Result<OwnedSemaphorePermit, ApiError> {
        let gate = self.gate(tenant);
        if let Ok(permit) = Arc::clone(&gate.permits).try_acquire_owned() {
            return Ok(permit);
        }
        let config = self.inner.runtime.config();
        let too_many = || {
            ApiError::from_status(
                StatusCode::TOO_MANY_REQUESTS,
                format!("tenant {tenant} is using its whole share of the platform; retry shortly"),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        };
        // Counted while it waits, however the wait ends: a client that hangs up drops this
        // future mid-wait, and a count left behind would shorten the queue for good.
        let queued = Queued::join(&gate.waiting, config.tenant_queue).ok_or_else(too_many)?;
        let waited = tokio::time::timeout(
            Duration::from_millis(config.tenant_queue_timeout_ms),
            Arc::clone(&gate.permits).acquire_owned(),
        )
        .await;
        drop(queued);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(too_many()),
        }
    }
}

/// A call counted in its tenant's short queue ([`Gateway::admit`]) until dropped.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    /// Counts one more waiting call, or `None` when `limit` are waiting already.
    fn join(waiting: &'a AtomicUsize, limit: usize) -> Option<Self> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Self(waiting))
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The answer to a call refused by admission: 429, `Retry-After: 1`, and why.
pub(crate) fn saturated(refusal: Saturated) -> ApiError {
    tracing::debug!(
        held = refusal.held,
        share = refusal.share,
        "call refused: its tenant holds its fair share of a saturated process"
    );
    // One answer whatever the tenant: anyone may call a tenant's paths, and neither how busy
    // a tenant is nor whether this process has served it is theirs to learn.
    ApiError::from_status(
        StatusCode::TOO_MANY_REQUESTS,
        "the platform is saturated and this alliance's calls hold their fair share of it; \
         retry shortly",
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use futures::{FutureExt, poll};

    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    /// A place for `tenant` at once, which has been served (its install resolved).
    fn served<'a>(admission: &'a Admission, tenant: &'a TenantId) -> Place<'a> {
        let mut place = admission
            .admit(tenant)
            .now_or_never()
            .expect("admitted without waiting")
            .expect("admitted");
        place.served();
        place
    }

    /// A place for `tenant`, or the refusal once the wait (zero) runs out.
    async fn ask<'a>(
        admission: &'a Admission,
        tenant: &'a TenantId,
    ) -> Result<Place<'a>, Saturated> {
        admission.admit(tenant).await
    }

    /// Polls a waiting call: when it has been handed a place it takes it at this poll and
    /// goes on at the next (after the sockets' turn).
    async fn taken<F: Future>(mut call: Pin<&mut F>) -> Poll<F::Output> {
        match poll!(call.as_mut()) {
            Poll::Pending => poll!(call),
            ready => ready,
        }
    }

    /// (calls in flight, holders with calls in flight, calls of tenants not served yet,
    /// calls waiting)
    fn counts(admission: &Admission) -> (usize, usize, usize, usize) {
        let counts = admission.lock();
        let waiting = counts.lines.values().map(VecDeque::len).sum();
        assert_eq!(counts.turns.len(), counts.lines.len());
        (counts.total, counts.active, counts.unknown, waiting)
    }

    #[tokio::test]
    async fn below_saturation_everyone_is_admitted() {
        let admission = Admission::new(4, Duration::ZERO);
        let a = tenant("north-downs");
        let places: Vec<_> = (0..3).map(|_| served(&admission, &a)).collect();
        assert_eq!(counts(&admission), (3, 1, 0, 0));
        // The fourth reaches the limit; the fifth finds the tenant holding its whole share.
        let fourth = ask(&admission, &a).await.expect("admitted");
        let refused = admission.admit(&a).await.unwrap_err();
        assert_eq!(
            refused,
            Saturated {
                held: 4,
                share: 4,
                known: true
            }
        );
        drop((places, fourth));
        assert_eq!(counts(&admission), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn a_tenant_alone_or_quiet_goes_on_at_once_and_a_busier_one_waits_its_turn() {
        let admission = Admission::new(100, Duration::ZERO);
        let (a, b) = (tenant("north-downs"), tenant("the-marches"));
        let first = served(&admission, &a);
        let second = served(&admission, &a);
        assert!(first.at_once && second.at_once, "only a is about");
        assert!(
            second.wait_turn().now_or_never().is_some(),
            "alone, a call does not queue behind other tasks"
        );
        assert_eq!(
            admission.measured_ms.load(Ordering::Relaxed),
            0,
            "nor is it measured"
        );
        // b has fewer calls in flight than a: quiet, it goes on at once.
        let quiet = served(&admission, &b);
        assert!(quiet.at_once, "b has 1 in flight against a's 2");
        // a has more than b: its next call takes its turn, and is measured.
        let third = served(&admission, &a);
        assert!(!third.at_once);
        {
            let mut turn = pin!(third.wait_turn());
            assert!(
                poll!(turn.as_mut()).is_pending(),
                "queued behind the ready tasks once"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert!(poll!(turn).is_ready());
        }
        assert!(admission.measured_ms.load(Ordering::Relaxed) > 0);
        // b has nothing in flight now, but called within RECENT: its next call is to be
        // expected, so a is not alone.
        drop(quiet);
        let fourth = served(&admission, &a);
        assert!(!fourth.at_once);
        assert!(fourth.wait_turn().now_or_never().is_none());
        drop((first, second, third, fourth));
        assert_eq!(counts(&admission), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn a_saturated_process_holds_the_flooder_to_its_share_and_admits_the_quiet_tenant() {
        let admission = Admission::new(8, Duration::ZERO);
        let (a, b) = (tenant("north-downs"), tenant("the-marches"));
        let quiet = served(&admission, &b);
        let flood: Vec<_> = (0..7).map(|_| served(&admission, &a)).collect();
        assert_eq!(counts(&admission), (8, 2, 0, 0));
        // Saturated: the share is 8 ÷ 2 tenants; the flooder holds 7.
        let refused = admission.admit(&a).await.unwrap_err();
        assert_eq!((refused.held, refused.share), (7, 4));
        // The quiet tenant holds 1, under its share: admitted at once until it holds 4.
        let more: Vec<_> = (0..3).map(|_| served(&admission, &b)).collect();
        assert!(admission.admit(&b).await.is_err(), "b now holds its share");
        // A third tenant with nothing in flight is always admitted.
        let c = tenant("wessex");
        let third = served(&admission, &c);
        drop((quiet, more, third, flood));
        assert_eq!(counts(&admission), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn while_the_workers_are_busy_the_tenant_with_more_calls_waits() {
        let mut admission = Admission::new(100, Duration::ZERO);
        admission.floor = 2;
        let (a, b) = (tenant("north-downs"), tenant("the-marches"));
        // The quiet tenant called a moment ago and has nothing in flight now.
        drop(served(&admission, &b));
        let flood: Vec<_> = (0..4).map(|_| served(&admission, &a)).collect();
        for _ in 0..64 {
            admission.waited(Duration::from_millis(5));
        }
        assert!(admission.pressure().busy);
        // Far below the limit, but busy, and alone in flight while the quiet tenant's next
        // call is to be expected: the flooder adds no more.
        let refused = admission.admit(&a).await.unwrap_err();
        assert_eq!((refused.held, refused.share), (4, 2));
        // The quiet tenant goes on until it has more calls in flight than the flooder.
        let quiet: Vec<_> = (0..5).map(|_| served(&admission, &b)).collect();
        assert!(admission.admit(&b).await.is_err(), "b now has more than a");
        // Then the flooder may catch up, and go one further, as b did.
        let more: Vec<_> = (0..2).map(|_| served(&admission, &a)).collect();
        assert!(admission.admit(&a).await.is_err(), "a has more than b");
        // The worker threads keep up again: only the limit counts.
        for _ in 0..64 {
            admission.waited(Duration::from_micros(10));
        }
        assert!(!admission.pressure().busy);
        let after: Vec<_> = (0..10).map(|_| served(&admission, &a)).collect();
        drop((flood, quiet, more, after));
        assert_eq!(counts(&admission), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn a_tenant_with_nobody_else_about_is_not_held_for_busy_workers() {
        let mut admission = Admission::new(100, Duration::ZERO);
        admission.floor = 2;
        let a = tenant("north-downs");
        let mut places: Vec<_> = (0..4).map(|_| served(&admission, &a)).collect();
        for _ in 0..64 {
            admission.waited(Duration::from_millis(5));
        }
        assert!(admission.pressure().busy);
        // Its calls may be waiting on I/O; holding them back would protect nobody.
        places.extend((0..10).map(|_| served(&admission, &a)));
        assert_eq!(counts(&admission), (14, 1, 0, 0));
    }

    #[tokio::test]
    async fn an_old_measure_of_busy_workers_holds_nobody_back() {
        let mut admission = Admission::new(100, LONG);
        admission.floor = 2;
        let (a, b) = (tenant("north-downs"), tenant("the-marches"));
        drop(served(&admission, &b));
        let _flood: Vec<_> = (0..2).map(|_| served(&admission, &a)).collect();
        for _ in 0..64 {
            admission.waited(Duration::from_millis(5));
        }
        let mut waiting = pin!(admission.admit(&a));
        assert!(poll!(waiting.as_mut()).is_pending(), "held while busy");
        // No call admitted since: the measure goes stale, and the next call to come lets
        // the waiting one go first.
        tokio::time::sleep(BUSY_FRESH + Duration::from_millis(20)).await;
        assert!(!admission.pressure().busy);
        let next = served(&admission, &a);
        assert!(matches!(taken(waiting.as_mut()).await, Poll::Ready(Ok(_))));
        drop(next);
    }

    #[tokio::test]
    async fn a_waiting_call_takes_the_place_its_tenant_frees() {
        let admission = Admission::new(2, LONG);
        let a = tenant("north-downs");
        let first = served(&admission, &a);
        let _second = served(&admission, &a);
        let mut third = pin!(admission.admit(&a));
        assert!(poll!(third.as_mut()).is_pending());
        assert_eq!(counts(&admission), (2, 1, 0, 1));
        drop(first);
        let Poll::Ready(Ok(_third)) = taken(third.as_mut()).await else {
            panic!("the freed place goes to the waiting call");
        };
        assert_eq!(counts(&admission), (2, 1, 0, 0));
    }

    #[tokio::test]
    async fn freed_places_go_to_the_waiting_tenants_in_turn() {
        let admission = Admission::new(2, LONG);
        let (a, b) = (tenant("north-downs"), tenant("the-marches"));
        let a1 = served(&admission, &a);
        let a2 = served(&admission, &a);
        // Saturated, but b holds nothing: admitted at once. The share is now 1 each.
        let b1 = served(&admission, &b);
        let mut a3 = pin!(admission.admit(&a));
        let mut a4 = pin!(admission.admit(&a));
        let mut b2 = pin!(admission.admit(&b));
        for waiting in [a3.as_mut(), a4.as_mut(), b2.as_mut()] {
            assert!(poll!(waiting).is_pending());
        }
        assert_eq!(counts(&admission), (3, 2, 0, 3));
        // Still saturated with a's share held: nobody goes on.
        drop(a1);
        assert!(poll!(a3.as_mut()).is_pending());
        // Under the limit: a's turn comes first.
        drop(a2);
        let Poll::Ready(Ok(a3)) = taken(a3.as_mut()).await else {
            panic!("a's first waiting call goes on");
        };
        // Then b's, although a's next call asked before b's.
        drop(b1);
        assert!(poll!(a4.as_mut()).is_pending());
        let Poll::Ready(Ok(b2)) = taken(b2.as_mut()).await else {
            panic!("b's turn");
        };
        drop((a3, b2));
        assert!(matches!(taken(a4.as_mut()).await, Poll::Ready(Ok(_))));
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_is_refused_and_leaves_its_line() {
        let admission = Admission::new(1, Duration::from_millis(20));
        let a = tenant("north-downs");
        let held = served(&admission, &a);
        let refused = admission.admit(&a).await.unwrap_err();
        assert_eq!((refused.held, refused.share, refused.known), (1, 1, true));
        assert_eq!(counts(&admission), (1, 1, 0, 0));
        drop(held);
        assert_eq!(counts(&admission), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn a_place_handed_to_a_call_gone_goes_on() {
        let admission = Admission::new(1, LONG);
        let a = tenant("north-downs");
        let held = served(&admission, &a);
        let mut gone = Box::pin(admission.admit(&a));
        let mut next = pin!(admission.admit(&a));
        assert!(poll!(gone.as_mut()).is_pending());
        assert!(poll!(next.as_mut()).is_pending());
        drop(held); // handed to `gone`, whose client went away before it ran
        drop(gone);
        assert!(matches!(taken(next.as_mut()).await, Poll::Ready(Ok(_))));
    }

    #[tokio::test]
    async fn tenants_not_served_yet_share_one_count() {
        let admission = Admission::new(4, Duration::ZERO);
        let a = tenant("north-downs");
        let held = served(&admission, &a);
        let names: Vec<TenantId> = (0..10).map(|i| tenant(&format!("made-up-{i}"))).collect();
        let mut admitted = Vec::new();
        let mut refused = 0;
        for name in &names {
            match ask(&admission, name).await {
                Ok(place) => admitted.push(place),
                Err(e) => {
                    assert!(!e.known);
                    refused += 1;
                }
            }
        }
        // Made-up names count as one tenant: once the process is saturated they are held
        // together, not each with a share of its own.
        assert_eq!((admitted.len(), refused), (3, 7));
        assert_eq!(counts(&admission), (4, 2, 3, 0));
        // The real tenant still gets its share.
        let again = ask(&admission, &a).await.expect("under its share");
        assert_eq!(
            admission.lock().known.len(),
            1,
            "made-up names are not kept"
        );
        drop((held, again, admitted));
        assert_eq!(counts(&admission), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn tenants_known_from_the_store_are_not_held_with_made_up_names() {
        let admission = Admission::new(4, Duration::ZERO);
        let real = tenant("north-downs");
        admission.know([real.clone()]);
        let made_up: Vec<_> = (0..3).map(|i| tenant(&format!("made-up-{i}"))).collect();
        let flood: Vec<_> = made_up
            .iter()
            .map(|name| admission.admit(name).now_or_never().unwrap().unwrap())
            .collect();
        assert_eq!(counts(&admission), (3, 1, 3, 0));
        // Saturated at 4, the made-up names hold their one share (2 of 4 with the real
        // tenant in flight); the real tenant's first call, never served here, is its own.
        let first = ask(&admission, &real).await.expect("counted as itself");
        assert_eq!(counts(&admission), (4, 2, 3, 0));
        let refused = ask(&admission, &tenant("made-up-9")).await.unwrap_err();
        assert!(!refused.known);
        drop((first, flood));
        assert_eq!(counts(&admission), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn a_call_served_moves_to_its_tenants_count() {
        let admission = Admission::new(4, Duration::ZERO);
        let a = tenant("north-downs");
        let mut first = ask(&admission, &a).await.unwrap();
        assert_eq!(counts(&admission), (1, 1, 1, 0));
        first.served();
        assert_eq!(counts(&admission), (1, 1, 0, 0));
        assert_eq!(admission.lock().known.get(&a), Some(&1));
        drop(first);
        assert_eq!(admission.lock().known.get(&a), Some(&0));
        assert_eq!(counts(&admission), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn a_call_leaves_the_count_while_its_body_arrives() {
        let admission = Admission::new(2, Duration::ZERO);
        let a = tenant("north-downs");
        let mut upload = served(&admission, &a);
        upload.release();
        assert_eq!(counts(&admission), (0, 0, 0, 0));
        let _others: Vec<_> = (0..2).map(|_| served(&admission, &a)).collect();
        // Its body in, the call finds the process saturated and its tenant at its share.
        let refused = upload.hold().await.unwrap_err();
        assert_eq!((refused.held, refused.share), (2, 2));
    }
}
