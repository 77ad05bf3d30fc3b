//! Byte offsets ⇄ LSP positions (0-based line, UTF-16 code units in the line).

/// A position as LSP counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utf16Position {
    pub line: u32,
    pub character: u32,
}

/// Line starts of one document, for conversions in both directions.
#[derive(Debug, Clone)]
pub struct LineMap {
    starts: Vec<usize>,
}

impl LineMap {
    pub fn new(text: &str) -> LineMap {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineMap { starts }
    }

    /// The position of byte `offset` (clamped to the text, and to the start of the
    /// character it falls inside).
    pub fn position(&self, text: &str, offset: usize) -> Utf16Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let character: usize = text[start..offset].chars().map(char::len_utf16).sum();
        Utf16Position {
            line: line as u32,
            character: character as u32,
        }
    }

    /// The byte offset of an LSP position. A character past the end of its line
    /// means the end of the line; a line past the end means the end of the text; a
    /// position inside a surrogate pair means the start of that character.
    pub fn offset(&self, text: &str, position: Utf16Position) -> usize {
        let Some(&start) = self.starts.get(position.line as usize) else {
            return text.len();
        };
        let end = self
            .starts
            .get(position.line as usize + 1)
            .map_or(text.len(), |&next| next - 1);
        let mut units = 0u32;
        for (i, c) in text[start..end].char_indices() {
            let next = units + c.len_utf16() as u32;
            if next > position.character {
                return start + i;
            }
            units = next;
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn astral_characters_count_two_units() {
        let text = "a🎉b\nçx";
        let map = LineMap::new(text);
        let b = text.find('b').unwrap();
        assert_eq!(
            map.position(text, b),
            Utf16Position {
                line: 0,
                character: 3
            }
        );
        assert_eq!(
            map.offset(
                text,
                Utf16Position {
                    line: 0,
                    character: 3
                }
            ),
            b
        );
        let x = text.find('x').unwrap();
        assert_eq!(
            map.position(text, x),
            Utf16Position {
                line: 1,
                character: 1
            }
        );
        assert_eq!(
            map.offset(
                text,
                Utf16Position {
                    line: 1,
                    character: 1
                }
            ),
            x
        );
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let text = "ab\ncd";
        let map = LineMap::new(text);
        assert_eq!(
            map.offset(
                text,
                Utf16Position {
                    line: 0,
                    character: 99
                }
            ),
            2
        );
        assert_eq!(
            map.offset(
                text,
                Utf16Position {
                    line: 9,
                    character: 0
                }
            ),
            text.len()
        );
        // Inside the surrogate pair of 🎉: the start of the character.
        let t = "🎉";
        assert_eq!(
            LineMap::new(t).offset(
                t,
                Utf16Position {
                    line: 0,
                    character: 1
                }
            ),
            0
        );
    }

    #[test]
    fn round_trips_every_char_boundary() {
        let text = "journey j {\n  owner \"ça 🎉\"\r\n}\n";
        let map = LineMap::new(text);
        for (i, _) in text.char_indices() {
            assert_eq!(map.offset(text, map.position(text, i)), i, "offset {i}");
        }
    }
}
