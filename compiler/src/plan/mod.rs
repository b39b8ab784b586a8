//! Schedule and memory plan: kernel order and arena offsets.
