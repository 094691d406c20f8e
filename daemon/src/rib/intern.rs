//! Interned attribute sets and next hops: a million routes that share a
//! few thousand attribute sets hold a few thousand `Attributes` values,
//! and comparing two routes' attributes is a pointer comparison.

use std::hash::Hash;
use std::sync::Arc;

#[derive(Debug)]
pub struct Interner<T> {
    set: crate::memory::FastSet<Arc<T>>,
    /// Size after the last sweep; the next one runs when the set doubles.
    swept_at: usize,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            set: Default::default(),
            swept_at: 0,
        }
    }
}

impl<T: Hash + Eq> Interner<T> {
    /// The shared copy of `attrs`.
    pub fn intern(&mut self, attrs: T) -> Arc<T> {
        if let Some(a) = self.set.get(&attrs) {
            return a.clone();
        }
        let a = Arc::new(attrs);
        self.set.insert(a.clone());
        if self.set.len() > 1024 && self.set.len() > 2 * self.swept_at {
            self.sweep();
        }
        a
    }

    /// The shared copy of an attribute set that may already be shared.
    pub fn intern_arc(&mut self, attrs: &Arc<T>) -> Arc<T> {
        match self.set.get(attrs.as_ref()) {
            Some(a) => a.clone(),
            None => {
                self.set.insert(attrs.clone());
                attrs.clone()
            }
        }
    }

    /// Drops sets no route refers to any more.
    pub fn sweep(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.swept_at = self.set.len();
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::Attributes;

    #[test]
    fn equal_sets_share_one_allocation_and_unused_ones_are_swept() {
        let mut i = Interner::default();
        let a = i.intern(Attributes {
            med: Some(1),
            ..Attributes::default()
        });
        let b = i.intern(Attributes {
            med: Some(1),
            ..Attributes::default()
        });
        assert!(Arc::ptr_eq(&a, &b));
        let c = i.intern(Attributes {
            med: Some(2),
            ..Attributes::default()
        });
        assert_eq!(i.len(), 2);
        drop(c);
        i.sweep();
        assert_eq!(i.len(), 1);
    }
}
