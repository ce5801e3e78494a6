//! A value derived from a secret key, remembered per thread for the last
//! key asked: a client keeps using one key, so a worker derives it once
//! (an environment id is a SHA-256 of the key, an HMAC key's state two
//! blocks of it) rather than once per request.

use std::cell::RefCell;

/// Keys longer than this are derived every time, not kept: a flood of huge
/// keys costs each worker nothing more than one of this size.
pub const MAX_KEY: usize = 1024;

/// The last key a thread asked for, and what was derived from it. Meant for
/// a `thread_local!`.
#[derive(Debug)]
pub struct Last<T>(RefCell<Option<(Box<[u8]>, T)>>);

impl<T: Clone> Last<T> {
    pub const fn new() -> Last<T> {
        Last(RefCell::new(None))
    }

    /// What was kept for `key`, when it is the last key kept.
    pub fn get(&self, key: &[u8]) -> Option<T> {
        match self.0.borrow().as_ref() {
            Some((k, value)) if **k == *key => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `value` for `key` (unless the key is over [`MAX_KEY`]).
    pub fn put(&self, key: &[u8], value: T) {
        if key.len() <= MAX_KEY {
            *self.0.borrow_mut() = Some((key.into(), value));
        }
    }

    /// What `make` derives from `key`: kept from the last call when `key`
    /// is the same (compared byte for byte), made and kept otherwise.
    pub fn get_or<E>(&self, key: &[u8], make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let value = make()?;
        self.put(key, value.clone());
        Ok(value)
    }
}

impl<T: Clone> Default for Last<T> {
    fn default() -> Last<T> {
        Last::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_key_is_kept_and_a_new_one_replaces_it() {
        let last = Last::new();
        let made = std::cell::Cell::new(0);
        let get = |key: &[u8]| {
            last.get_or(key, || {
                made.set(made.get() + 1);
                Ok::<_, ()>(key.len())
            })
        };
        assert_eq!([get(b"a"), get(b"a"), get(b"bb"), get(b"a")], [Ok(1), Ok(1), Ok(2), Ok(1)]);
        assert_eq!(made.get(), 3);
        let huge = vec![b'k'; MAX_KEY + 1];
        assert_eq!((get(&huge), get(&huge)), (Ok(MAX_KEY + 1), Ok(MAX_KEY + 1)));
        assert_eq!(made.get(), 5, "a key over the limit is not kept");
        assert_eq!(last.get_or(b"c", || Err("no")), Err("no"));
        assert_eq!(last.get_or(b"a", || Err("no")), Ok(1), "a failure keeps nothing");
    }
}
