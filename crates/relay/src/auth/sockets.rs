//! Caps on concurrent WebSockets (issue 10): per account, per client
//! address and relay-wide, so that one account (or one address, or
//! everyone together) cannot hold more sockets than the relay can afford.
//!
//! A socket takes a [`SocketSlot`] before it is served and keeps it for
//! its lifetime; dropping the slot gives it back. A refused socket is
//! upgraded and closed at once with the close code of [`Refused::close_code`]
//! (a browser cannot read the HTTP status of a refused handshake). Counts
//! only, no I/O; the address is the TCP peer (proxy headers are not
//! trusted), so behind a reverse proxy every browser shares one address.
//!
//! In a cluster the account and address caps count every relay's sockets:
//! [`SocketLimits::acquire_cluster_wide`] adds what the other relays hold
//! ([`Elsewhere`], read through `super::shared::SocketLeases`) to this
//! relay's counts, and every change is written back for them. The
//! relay-wide cap stays per relay: it protects this process's resources.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::shared::{Held, SocketLeases};

/// The caps (protocol.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketCaps {
    /// WebSockets one account may hold.
    pub per_account: usize,
    /// WebSockets one client address may hold.
    pub per_addr: usize,
    /// WebSockets the relay holds in all.
    pub global: usize,
}

impl Default for SocketCaps {
    fn default() -> Self {
        SocketCaps {
            per_account: 256,
            per_addr: 512,
            global: 10_000,
        }
    }
}

/// Which cap refused a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Account,
    Address,
    Global,
}

impl Refused {
    /// The WebSocket close code: 4429 (too many sockets of yours: close
    /// some) for the account and address caps, 1013 (try again later) for
    /// the relay-wide cap.
    pub fn close_code(self) -> u16 {
        match self {
            Refused::Account | Refused::Address => protocol::control::close::TOO_MANY,
            Refused::Global => protocol::control::close::TRY_AGAIN_LATER,
        }
    }

    /// The close reason.
    pub fn reason(self, caps: &SocketCaps) -> String {
        match self {
            Refused::Account => format!(
                "too many WebSockets for this account (limit {})",
                caps.per_account
            ),
            Refused::Address => format!(
                "too many WebSockets from this address (limit {})",
                caps.per_addr
            ),
            Refused::Global => "the relay is at its WebSocket limit; try again later".into(),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_account: HashMap<String, usize>,
    by_addr: HashMap<IpAddr, usize>,
    /// Sockets refused by each cap so far: global, account, address.
    refused: [u64; 3],
}

/// The sockets other relays hold for an account and an address (cluster
/// mode; zero for a single relay).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Elsewhere {
    pub account: usize,
    pub addr: usize,
}

/// The live counts. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct SocketLimits {
    caps: SocketCaps,
    counts: Arc<Mutex<Counts>>,
    /// Cluster mode: where the counts are shared with the other relays.
    leases: Option<Arc<SocketLeases>>,
}

/// A held socket slot; dropping it frees the slot.
#[derive(Debug)]
pub struct SocketSlot {
    counts: Arc<Mutex<Counts>>,
    leases: Option<Arc<SocketLeases>>,
    account: String,
    addr: IpAddr,
}

fn lock(m: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SocketLimits {
    /// Counts under `caps`.
    pub fn new(caps: SocketCaps) -> Self {
        SocketLimits {
            caps,
            counts: Arc::default(),
            leases: None,
        }
    }

    /// Counts under `caps` shared with the other relays through `leases`.
    pub fn shared(caps: SocketCaps, leases: SocketLeases) -> Self {
        SocketLimits {
            leases: Some(Arc::new(leases)),
            ..Self::new(caps)
        }
    }

    /// Where the counts are shared, in cluster mode.
    pub fn leases(&self) -> Option<&Arc<SocketLeases>> {
        self.leases.as_ref()
    }

    /// Takes a slot counting the other relays' sockets too (cluster mode:
    /// one database round trip; a single relay: none, as
    /// [`SocketLimits::acquire`]).
    pub async fn acquire_cluster_wide(
        &self,
        account: &str,
        addr: IpAddr,
    ) -> Result<SocketSlot, Refused> {
        let elsewhere = match &self.leases {
            Some(l) => l.elsewhere(account, addr).await,
            None => Elsewhere::default(),
        };
        self.acquire_beside(account, addr, elsewhere)
    }

    /// The caps enforced.
    pub fn caps(&self) -> &SocketCaps {
        &self.caps
    }

    /// Takes a slot for a socket of `account` from `addr`, or says which
    /// cap refuses it (the global cap is checked first).
    pub fn acquire(&self, account: &str, addr: IpAddr) -> Result<SocketSlot, Refused> {
        self.acquire_beside(account, addr, Elsewhere::default())
    }

    /// [`SocketLimits::acquire`] with `elsewhere` held by other relays
    /// counted against the account and address caps.
    pub fn acquire_beside(
        &self,
        account: &str,
        addr: IpAddr,
        elsewhere: Elsewhere,
    ) -> Result<SocketSlot, Refused> {
        let mut c = lock(&self.counts);
        if c.total >= self.caps.global {
            c.refused[0] += 1;
            return Err(Refused::Global);
        }
        let of_account = c.by_account.get(account).copied().unwrap_or(0);
        if of_account.saturating_add(elsewhere.account) >= self.caps.per_account {
            c.refused[1] += 1;
            return Err(Refused::Account);
        }
        let of_addr = c.by_addr.get(&addr).copied().unwrap_or(0);
        if of_addr.saturating_add(elsewhere.addr) >= self.caps.per_addr {
            c.refused[2] += 1;
            return Err(Refused::Address);
        }
        c.total += 1;
        *c.by_account.entry(account.to_owned()).or_default() += 1;
        *c.by_addr.entry(addr).or_default() += 1;
        drop(c);
        if let Some(l) = &self.leases {
            l.changed(account, addr);
        }
        Ok(SocketSlot {
            counts: self.counts.clone(),
            leases: self.leases.clone(),
            account: account.to_owned(),
            addr,
        })
    }

    /// Sockets held under one key (for the leases).
    pub(crate) fn count_of(&self, held: &Held) -> usize {
        let c = lock(&self.counts);
        match held {
            Held::Account(a) => c.by_account.get(a).copied().unwrap_or(0),
            Held::Addr(a) => c.by_addr.get(a).copied().unwrap_or(0),
        }
    }

    /// Every key with sockets held (for the leases).
    pub(crate) fn held_keys(&self) -> Vec<Held> {
        let c = lock(&self.counts);
        c.by_account
            .keys()
            .map(|a| Held::Account(a.clone()))
            .chain(c.by_addr.keys().map(|a| Held::Addr(*a)))
            .collect()
    }

    /// Sockets refused so far by each cap, named for `/metrics`.
    pub fn refusals(&self) -> [(&'static str, u64); 3] {
        let r = lock(&self.counts).refused;
        [
            ("sockets_global", r[0]),
            ("sockets_per_account", r[1]),
            ("sockets_per_address", r[2]),
        ]
    }

    /// Sockets held in all.
    pub fn total(&self) -> usize {
        lock(&self.counts).total
    }

    /// Sockets `account` holds.
    pub fn of_account(&self, account: &str) -> usize {
        lock(&self.counts)
            .by_account
            .get(account)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_account.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                c.by_account.remove(&self.account);
            }
        }
        if let Some(n) = c.by_addr.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                c.by_addr.remove(&self.addr);
            }
        }
        drop(c);
        if let Some(l) = &self.leases {
            l.changed(&self.account, self.addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn each_cap_refuses_past_its_limit_and_slots_come_back() {
        let l = SocketLimits::new(SocketCaps {
            per_account: 2,
            per_addr: 3,
            global: 5,
        });
        let a1 = l.acquire("ann", A).expect("1");
        let _a2 = l.acquire("ann", A).expect("2");
        assert_eq!(l.acquire("ann", B).err(), Some(Refused::Account));
        let _b1 = l.acquire("ben", A).expect("3 from A");
        assert_eq!(l.acquire("cat", A).err(), Some(Refused::Address));
        let _c1 = l.acquire("cat", B).expect("4");
        let _d1 = l.acquire("dan", B).expect("5");
        assert_eq!(l.acquire("eve", B).err(), Some(Refused::Global));
        assert_eq!(l.total(), 5);
        drop(a1);
        assert_eq!(l.of_account("ann"), 1);
        assert!(l.acquire("eve", B).is_ok(), "a freed slot is reusable");
        assert_eq!(Refused::Account.close_code(), 4429);
        assert_eq!(Refused::Global.close_code(), 1013);
    }

    #[test]
    fn other_relays_sockets_count_against_the_account_and_address_caps_only() {
        let l = SocketLimits::new(SocketCaps {
            per_account: 3,
            per_addr: 4,
            global: 2,
        });
        let two_elsewhere = Elsewhere {
            account: 2,
            addr: 0,
        };
        let _a1 = l.acquire_beside("ann", A, two_elsewhere).expect("1 + 2");
        assert_eq!(
            l.acquire_beside("ann", B, two_elsewhere).err(),
            Some(Refused::Account),
            "1 here and 2 elsewhere fill a cap of 3"
        );
        assert_eq!(
            l.acquire_beside(
                "ben",
                A,
                Elsewhere {
                    account: 0,
                    addr: 3
                }
            )
            .err(),
            Some(Refused::Address)
        );
        let _b1 = l
            .acquire_beside("ben", B, Elsewhere::default())
            .expect("2 here: the relay-wide cap counts this relay only");
        assert_eq!(
            l.acquire_beside("cat", B, Elsewhere::default()).err(),
            Some(Refused::Global)
        );
    }
}
