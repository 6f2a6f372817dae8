//! The background worker that expires stale reservations.
//!
//! The worker exists only when the library is preloaded
//! (`shared_preload_libraries = 'atomic_inventory'`): PostgreSQL can register
//! static background workers only then. Without it, schedule
//! `expire_reservations()` yourself (pg_cron); both can run at once, they
//! skip each other's rows (SKIP LOCKED).

use crate::error::Error;
use crate::ops::{batches, reservations};
use crate::pg::{path, spi};
use crate::settings;
use crate::source::holds::{self, Sweep};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::Uuid;
use std::time::Duration;

/// Most busy holds the worker tries again, one by one, in a round.
const BUSY_RETRIES: usize = 3;

/// Registers the worker when the library is preloaded.
pub fn init() {
    // SAFETY: reading a postmaster-set flag during _PG_init.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        BackgroundWorkerBuilder::new("atomic_inventory reservation sweeper")
            .set_type("atomic_inventory sweeper")
            .set_function("ai_sweeper_main")
            .set_library("atomic_inventory")
            .enable_spi_access()
            .set_restart_time(Some(Duration::from_secs(10)))
            .load();
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn ai_sweeper_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(Some(&settings::sweep_database()), None);
    log!(
        "atomic_inventory sweeper started on database {}",
        settings::sweep_database()
    );
    // Warned once per worker process about an outdated schema and about a
    // database without the extension (below).
    let mut warned_outdated = false;
    let mut warned_missing = false;
    let mut busy: Vec<Uuid> = Vec::new();
    loop {
        let interval = settings::sweep_interval();
        // Off (0): still wake now and then to notice a reload turning it on.
        let nap = Duration::from_secs(if interval == 0 { 60 } else { interval as u64 });
        if !BackgroundWorker::wait_latch(Some(nap)) {
            break; // SIGTERM
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a worker to re-read its settings.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if settings::sweep_interval() == 0 {
            continue;
        }
        let limit = settings::sweep_batch();
        // Holds whose item stayed locked past sweep_lock_timeout are left
        // out of the batches and tried again one by one, a few per round.
        let outcome = round(limit, &mut busy);
        // Then lapsed batch claims go back to available (never waits).
        match lapse(limit) {
            Ok(0) => {}
            Ok(n) => log!("atomic_inventory sweeper returned {n} lapsed batch claims"),
            Err(Error::SchemaOutdated { .. }) => {} // warned about below
            Err(e) => warning!("atomic_inventory sweeper: lapsed batch claims: {e}"),
        }
        match outcome {
            // The default database is `postgres`; with the extension
            // installed elsewhere the worker would sweep nothing, silently.
            Ok(Attempt::Missing) => {
                if !warned_missing {
                    warning!(
                        "atomic_inventory sweeper: the extension is not installed in database \"{}\", nothing to sweep; set atomic_inventory.sweep_database to the database where it is (server restart), or sweep_interval = 0",
                        settings::sweep_database()
                    );
                    warned_missing = true;
                }
            }
            Ok(Attempt::Swept(0)) => warned_missing = false,
            Ok(Attempt::Swept(n)) => {
                warned_missing = false;
                log!("atomic_inventory sweeper expired {n} reservations")
            }
            Ok(Attempt::Busy) => {}
            Err(e @ Error::SchemaOutdated { .. }) => {
                if !warned_outdated {
                    warning!("atomic_inventory sweeper: not sweeping until the update: {e}");
                    warned_outdated = true;
                }
            }
            Err(e) => warning!("atomic_inventory sweeper: {e}"),
        }
    }
    log!("atomic_inventory sweeper stopped");
    // Exit code 1: PostgreSQL starts the worker again after its restart
    // time (10 s) unless the server is shutting down. With 0 it would
    // unregister it, and one pg_terminate_backend() would end expiry until
    // the next server restart, silently.
    // SAFETY: ends this worker process, as its SIGTERM asked.
    unsafe { pg_sys::proc_exit(1) }
}

/// What one sweep transaction of the worker came to.
enum Attempt {
    /// the extension is not installed in this database
    Missing,
    /// this many reservations expired
    Swept(i32),
    /// a row stayed locked past sweep_lock_timeout: nothing changed
    Busy,
}

/// One transaction of the worker: the sweep of `which`, with the pinned
/// search path and every lock wait limited to sweep_lock_timeout, in a
/// subtransaction (a lock wait past it rolls back only that; so does any
/// other error, answered as Err instead of ending the worker).
///
/// The round's statements resolve names through the pinned search path, as
/// the calls' do (path::PinnedPath): the worker runs as the bootstrap
/// superuser, and the server's default search_path ("$user", public) would
/// let whoever may create objects in public supply operators or functions
/// its statements pick up. (Before 0.3.0 the rounds ran under that default.)
fn attempt(limit: i32, which: &Sweep) -> Result<Attempt, Error> {
    BackgroundWorker::transaction(|| {
        path::pinned(|| {
            Spi::connect_mut(|c| {
                let Some(installed) = spi::installed_version(c)? else {
                    return Ok(Attempt::Missing);
                };
                // The sweep's statements need this library's tables. Between
                // installing a new library (and the restart preloading needs)
                // and ALTER EXTENSION UPDATE they would fail on a missing
                // column every round. Checked every round (one catalog row
                // per sweep), unlike the calls' once-per-backend check.
                spi::require_version(installed)?;
                let swept = spi::isolated(|| match settings::sweep_lock_timeout() {
                    Some(ms) => spi::with_lock_timeout(ms, || reservations::sweep(c, limit, which)),
                    None => reservations::sweep(c, limit, which),
                });
                match swept {
                    Ok(n) => Ok(Attempt::Swept(n)),
                    Err(Error::LockTimeout { .. }) => Ok(Attempt::Busy),
                    Err(e) => Err(e),
                }
            })
        })
    })
}

/// One round of the worker. The batch (all due holds but the `busy` ones)
/// locks its items in ascending id order; if one of them stays locked past
/// sweep_lock_timeout (another transaction keeps it), the batch is rolled
/// back, its locks released after at most that wait, and the round expires
/// the due holds on managed items (a bound source's lock wait fails only
/// that source's part, see reservations::sweep) one per transaction
/// instead, each waiting at most as
/// long: the holds on the locked row are left, and join `busy` (after
/// BUSY_RETRIES of them the round stops, the next one goes on). Then
/// up to BUSY_RETRIES of `busy` are tried again, one by one; once a try
/// finds its rows free (or it is no longer due), `busy` is emptied and the
/// next batch takes them all again.
///
/// Why not wait: while the batch waits for one row it holds the rows
/// before it, so every sale of those items would queue behind the sweep
/// for as long as the other transaction lives (an open admin session), and
/// nothing would expire meanwhile. One by one, each transaction holds only
/// one hold's rows, locked in ascending order like every other call's, so
/// it can't deadlock with them.
fn round(limit: i32, busy: &mut Vec<Uuid>) -> Result<Attempt, Error> {
    let batch = Sweep {
        except: busy.clone(),
        only: None,
    };
    let mut outcome = attempt(limit, &batch)?;
    if let Attempt::Busy = outcome {
        let due = BackgroundWorker::transaction(|| {
            path::pinned(|| Spi::connect_mut(|c| holds::due_ids(c, limit, busy)))
        })?;
        let (mut n, mut waited) = (0, 0);
        for id in due {
            match attempt(1, &one(id))? {
                Attempt::Swept(k) => n += k,
                Attempt::Busy => {
                    busy.push(id);
                    waited += 1;
                }
                Attempt::Missing => {}
            }
            // each busy hold cost one full wait: leave the rest of the due
            // list to the next round (its batch leaves these out)
            if waited >= BUSY_RETRIES {
                break;
            }
        }
        warning!(
            "atomic_inventory sweeper: a row stayed locked longer than sweep_lock_timeout ({} ms); expired {n} due reservations one by one, {} wait for their rows",
            settings::sweep_lock_timeout_setting(),
            busy.len()
        );
        outcome = Attempt::Swept(n);
    }
    let retry: Vec<Uuid> = busy.iter().take(BUSY_RETRIES).copied().collect();
    for id in retry {
        match attempt(1, &one(id))? {
            // still locked: to the back of the queue
            Attempt::Busy => {
                busy.retain(|b| *b != id);
                busy.push(id);
            }
            // its rows were free (or it is no longer due): most likely the
            // transaction that held them ended, so the next batch takes all
            // of them again (if one is still locked, it times out once more)
            Attempt::Swept(k) => {
                busy.clear();
                if let Attempt::Swept(n) = &mut outcome {
                    *n += k;
                }
                break;
            }
            Attempt::Missing => {
                busy.clear();
                break;
            }
        }
    }
    Ok(outcome)
}

/// One transaction returning up to `limit` lapsed batch claims to
/// available (ops::batches::lapse); 0 where the extension is missing.
fn lapse(limit: i32) -> Result<i32, Error> {
    BackgroundWorker::transaction(|| {
        path::pinned(|| {
            Spi::connect_mut(|c| {
                let Some(installed) = spi::installed_version(c)? else {
                    return Ok(0);
                };
                spi::require_version(installed)?;
                spi::isolated(|| batches::lapse(c, limit))
            })
        })
    })
}

fn one(id: Uuid) -> Sweep {
    Sweep {
        except: Vec::new(),
        only: Some(id),
    }
}
