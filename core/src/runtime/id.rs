//! Profile ids as the runtime holds them.
//!
//! An id is read on every event (to find the profile), copied into every
//! decision and timer, and compared when timers fall due together. Held as
//! shared text elsewhere in memory, each of those would touch another cache
//! line (a miss per event on large streams). Ids of up to [`INLINE`] bytes (most
//! are: `cust-0042`, a 20-digit number, a short hash) are held inline; longer
//! ones (UUIDs) are shared text.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::rc::Rc;

/// The longest id held inline.
pub const INLINE: usize = 22;

#[derive(Clone)]
pub struct ProfileId(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Rc<str>),
}

impl ProfileId {
    pub fn new(id: &str) -> ProfileId {
        let mut bytes = [0; INLINE];
        ProfileId(match bytes.get_mut(..id.len()) {
            Some(head) => {
                head.copy_from_slice(id.as_bytes());
                Repr::Inline {
                    len: id.len() as u8,
                    bytes,
                }
            }
            None => Repr::Shared(Rc::from(id)),
        })
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from a whole `&str`, so always valid UTF-8.
            Repr::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Repr::Shared(s) => s,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Shared(s) => s.as_bytes(),
        }
    }
}

impl Default for ProfileId {
    fn default() -> ProfileId {
        ProfileId::new("")
    }
}

impl Deref for ProfileId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for ProfileId {
    fn from(id: &str) -> ProfileId {
        ProfileId::new(id)
    }
}

impl PartialEq for ProfileId {
    fn eq(&self, other: &ProfileId) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ProfileId {}

impl PartialEq<str> for ProfileId {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for ProfileId {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// Byte order, which is the order of the text (§7.3 orders timers by id).
impl Ord for ProfileId {
    fn cmp(&self, other: &ProfileId) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for ProfileId {
    fn partial_cmp(&self, other: &ProfileId) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for ProfileId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl fmt::Debug for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProfileId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProfileId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProfileId, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(ProfileId::new(&text))
    }
}

/// An id to look a profile up by, without making a [`ProfileId`] of it first;
/// hashed as ids are.
pub(crate) struct IdRef<'a>(pub(crate) &'a str);

impl Hash for IdRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

impl hashbrown::Equivalent<ProfileId> for IdRef<'_> {
    fn equivalent(&self, id: &ProfileId) -> bool {
        self.0.as_bytes() == id.as_bytes()
    }
}

impl From<&IdRef<'_>> for ProfileId {
    fn from(id: &IdRef<'_>) -> ProfileId {
        ProfileId::new(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn ids_hash_compare_and_order_as_their_text() {
        let hasher = rustc_hash::FxBuildHasher;
        let ids = [
            "",
            "a",
            "b",
            "cust-0000042",
            "1234567890123456789012",
            "12345678901234567890123",
            "0b7e7f6a-2f3c-4a9e-9c1d-8e2f5a6b7c8d",
            "é",
        ];
        for id in ids {
            let key = ProfileId::new(id);
            assert_eq!(
                matches!(key.0, Repr::Inline { .. }),
                id.len() <= INLINE,
                "{id}"
            );
            assert_eq!(key.as_str(), id);
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(IdRef(id)));
            assert!(hashbrown::Equivalent::equivalent(&IdRef(id), &key));
            for other in ids {
                let other_key = ProfileId::new(other);
                assert_eq!(key.cmp(&other_key), id.cmp(other), "{id} {other}");
                assert_eq!(key == other_key, id == other);
                assert_eq!(
                    hashbrown::Equivalent::equivalent(&IdRef(other), &key),
                    id == other
                );
            }
        }
    }
}
