//! The results of the last [`COMMAND_MEMORY`] commands, by id: a command
//! the relay delivers again (a retry after a lost connection) is answered
//! with the same result without acting again (docs/protocol.md §4.3).
//! Pure: no I/O.

use std::collections::{HashMap, VecDeque};

use protocol::runner::{COMMAND_MEMORY, Channel, ErrorBody};

/// A command's result: the channel it opened (if any) or why it failed.
pub type CommandResult = Result<Option<Channel>, ErrorBody>;

#[derive(Debug, Default)]
pub struct Memory {
    order: VecDeque<String>,
    results: HashMap<String, CommandResult>,
}

impl Memory {
    /// The remembered result of `id`.
    pub fn get(&self, id: &str) -> Option<&CommandResult> {
        self.results.get(id)
    }

    /// Remembers `id`'s result, forgetting the oldest beyond the bound.
    pub fn put(&mut self, id: String, result: CommandResult) {
        if self.results.insert(id.clone(), result).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > COMMAND_MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_256() {
        let mut m = Memory::default();
        for i in 0..300u32 {
            m.put(format!("c{i}"), Ok(Some(i)));
        }
        assert_eq!(m.get("c43"), None);
        assert_eq!(m.get("c44"), Some(&Ok(Some(44))));
        assert_eq!(m.get("c299"), Some(&Ok(Some(299))));
        m.put("c299".into(), Ok(None));
        assert_eq!(m.order.len(), COMMAND_MEMORY);
    }
}
