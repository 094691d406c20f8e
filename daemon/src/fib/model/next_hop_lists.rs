//! The lists of next hops that prefixes are routed over. A full table has
//! a handful, each shared by many prefixes: a prefix names its list by a
//! 4-byte id instead of holding a pointer to it, and what is known of a
//! list (the next hops it resolves to) is worked out once for all of its
//! prefixes.

use std::sync::Arc;

use crate::fib::kernel::KernelNextHop;
use crate::rib::Gateway;

/// Names one list in [`NextHopLists`] while a prefix uses it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ListId(u32);

impl ListId {
    /// The list's number, for a table that packs it.
    pub(super) fn index(self) -> u32 {
        self.0
    }

    /// The list numbered `index` (as [`ListId::index`] gave).
    pub(super) fn from_index(index: u32) -> ListId {
        ListId(index)
    }
}

struct Entry {
    list: Arc<[Gateway]>,
    /// Prefixes using it.
    users: usize,
    /// What the list resolves to, sorted, once asked; forgotten when a
    /// next hop resolves differently.
    resolved: Option<Arc<[KernelNextHop]>>,
}

#[derive(Default)]
pub(super) struct NextHopLists {
    entries: Vec<Option<Entry>>,
    ids: crate::memory::FastMap<Arc<[Gateway]>, ListId>,
    free: Vec<u32>,
}

impl NextHopLists {
    /// A use of the list `nhs`; true when the list is new.
    pub(super) fn acquire(&mut self, nhs: &[Gateway]) -> (ListId, bool) {
        if let Some(&id) = self.ids.get(nhs) {
            if let Some(e) = &mut self.entries[id.0 as usize] {
                e.users += 1;
            }
            return (id, false);
        }
        let list: Arc<[Gateway]> = nhs.into();
        let entry = Entry {
            list: list.clone(),
            users: 1,
            resolved: None,
        };
        let id = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Some(entry);
                ListId(i)
            }
            None => {
                self.entries.push(Some(entry));
                ListId((self.entries.len() - 1) as u32)
            }
        };
        self.ids.insert(list, id);
        (id, true)
    }

    /// Gives a use back; the list itself when that was its last.
    pub(super) fn release(&mut self, id: ListId) -> Option<Arc<[Gateway]>> {
        let slot = self.entries.get_mut(id.0 as usize)?;
        let e = slot.as_mut()?;
        e.users -= 1;
        if e.users > 0 {
            return None;
        }
        let gone = slot.take()?;
        self.ids.remove(&gone.list);
        self.free.push(id.0);
        Some(gone.list)
    }

    pub(super) fn get(&self, id: ListId) -> &Arc<[Gateway]> {
        &self.entries[id.0 as usize].as_ref().expect("a list in use").list
    }

    /// What the list resolves to, if worked out since its next hops last
    /// changed.
    pub(super) fn resolved(&self, id: ListId) -> Option<&Arc<[KernelNextHop]>> {
        self.entries[id.0 as usize].as_ref()?.resolved.as_ref()
    }

    pub(super) fn set_resolved(&mut self, id: ListId, resolved: Arc<[KernelNextHop]>) {
        if let Some(e) = &mut self.entries[id.0 as usize] {
            e.resolved = Some(resolved);
        }
    }

    /// The lists holding any of `changed`, whose resolution is forgotten.
    pub(super) fn invalidate(&mut self, changed: &dyn Fn(&Gateway) -> bool) -> Vec<ListId> {
        let mut hit = Vec::new();
        for (i, e) in self.entries.iter_mut().enumerate() {
            if let Some(e) = e
                && e.list.iter().any(changed)
            {
                e.resolved = None;
                hit.push(ListId(i as u32));
            }
        }
        hit
    }

    /// Gives back room once most lists went.
    pub(super) fn shrink(&mut self) -> bool {
        while matches!(self.entries.last(), Some(None)) {
            self.entries.pop();
        }
        let len = self.entries.len() as u32;
        self.free.retain(|&i| i < len);
        crate::memory::shrink_map(&mut self.ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(s: &str) -> Gateway {
        Gateway::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    #[test]
    fn a_list_is_shared_and_freed_with_its_last_user() {
        let mut l = NextHopLists::default();
        let ab = [gw("10.0.0.1"), gw("10.0.0.2")];
        let (a, new) = l.acquire(&ab);
        assert!(new);
        let (b, new) = l.acquire(&ab);
        assert!(!new);
        assert_eq!(a, b);
        let (c, _) = l.acquire(&[gw("10.0.0.3")]);
        assert_ne!(a, c);
        assert_eq!(&**l.get(a), &ab);
        assert!(l.release(a).is_none());
        assert_eq!(l.release(a).as_deref(), Some(&ab[..]));
        // The id is used again by the next new list.
        let (d, new) = l.acquire(&[gw("10.0.0.4")]);
        assert!(new);
        assert_eq!(d, a);
    }

    #[test]
    fn a_changed_next_hop_forgets_the_resolution_of_its_lists() {
        let mut l = NextHopLists::default();
        let (a, _) = l.acquire(&[gw("10.0.0.1"), gw("10.0.0.2")]);
        let (b, _) = l.acquire(&[gw("10.0.0.3")]);
        l.set_resolved(a, Arc::from(vec![]));
        l.set_resolved(b, Arc::from(vec![]));
        let hit = l.invalidate(&|g| *g == gw("10.0.0.2"));
        assert_eq!(hit, vec![a]);
        assert!(l.resolved(a).is_none());
        assert!(l.resolved(b).is_some());
    }
}
