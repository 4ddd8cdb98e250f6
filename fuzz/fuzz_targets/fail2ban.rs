//! Fuzz target: the `fail2ban` parser must not panic, and what it returns must hold together.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run(vigil_parse::Format::Fail2ban, data));
