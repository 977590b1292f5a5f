//! Session naming scheme for (idea, slot) (being written: see issue 2).
