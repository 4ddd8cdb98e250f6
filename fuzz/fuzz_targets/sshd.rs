//! Fuzz target: the `sshd` parser must not panic, and what it returns must hold together.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run(vigil_parse::Format::Sshd, data));
