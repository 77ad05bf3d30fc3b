//! Profile ids as keys of the profile table.
//!
//! Finding a profile must not read memory beyond the table's own: a key that
//! pointed to its text elsewhere would cost a cache miss on every event of a
//! large stream just to confirm the match. Ids of up to [`INLINE`] bytes (most
//! are: `cust-0042`, a 20-digit number, a short hash) are held in the key
//! itself; longer ones (UUIDs) are shared text.

use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// The longest id held in the key itself.
pub const INLINE: usize = 22;

#[derive(Clone)]
pub enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Rc<str>),
}

impl Key {
    pub fn new(id: &str) -> Key {
        let mut bytes = [0; INLINE];
        match bytes.get_mut(..id.len()) {
            Some(head) => {
                head.copy_from_slice(id.as_bytes());
                Key::Inline {
                    len: id.len() as u8,
                    bytes,
                }
            }
            None => Key::Shared(Rc::from(id)),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
            Key::Shared(s) => s.as_bytes(),
        }
    }
}

/// An id to look a key up by, hashed as keys are.
pub struct IdRef<'a>(pub &'a str);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl Hash for IdRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl hashbrown::Equivalent<Key> for IdRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.0.as_bytes() == key.as_bytes()
    }
}

impl From<&IdRef<'_>> for Key {
    fn from(id: &IdRef<'_>) -> Key {
        Key::new(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn keys_hash_and_compare_as_their_text() {
        let hasher = rustc_hash::FxBuildHasher;
        let ids = [
            "",
            "a",
            "cust-0000042",
            "1234567890123456789012",
            "12345678901234567890123",
            "0b7e7f6a-2f3c-4a9e-9c1d-8e2f5a6b7c8d",
        ];
        for id in ids {
            let key = Key::new(id);
            assert_eq!(
                matches!(key, Key::Inline { .. }),
                id.len() <= INLINE,
                "{id}"
            );
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(IdRef(id)));
            assert!(hashbrown::Equivalent::equivalent(&IdRef(id), &key));
            for other in ids.iter().filter(|o| **o != id) {
                assert!(!hashbrown::Equivalent::equivalent(&IdRef(other), &key));
                assert!(Key::new(other) != key);
            }
        }
    }
}
